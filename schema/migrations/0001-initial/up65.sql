COMMENT ON COLUMN support_bundle.reason IS 'Why the bundle was wanted.';
