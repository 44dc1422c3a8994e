COMMENT ON COLUMN fm_support_bundle_request.case_id IS 'The case that asked for the bundle.';
