COMMENT ON COLUMN fm_support_bundle_request.data_selection IS 'Which data the bundle should collect (JSON).';
