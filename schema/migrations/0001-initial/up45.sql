COMMENT ON COLUMN fm_support_bundle_request.reason IS 'Why the bundle is wanted, shown to operators.';
