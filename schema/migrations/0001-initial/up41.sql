COMMENT ON COLUMN fm_support_bundle_request.sitrep_id IS 'The sitrep that carries this request.';
