COMMENT ON TABLE fm_support_bundle_request IS 'Support bundles that one sitrep asks to exist. The request id is the id of the bundle to create.';
