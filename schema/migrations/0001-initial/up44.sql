COMMENT ON COLUMN fm_support_bundle_request.requested_sitrep_id IS 'The sitrep in which this request first appeared.';
