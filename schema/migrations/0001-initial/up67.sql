COMMENT ON COLUMN support_bundle.state IS 'Lifecycle state: collecting, active, destroying, failing or failed.';
