COMMENT ON COLUMN fm_support_bundle_request.id IS 'Id of the support bundle to create: a fresh random v4 UUID made when the request was first added.';
