COMMENT ON COLUMN support_bundle.id IS 'Bundle id; for FM-created bundles, the id of the request that asked for it.';
