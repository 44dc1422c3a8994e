COMMENT ON COLUMN support_bundle.assigned_executor IS 'The executor responsible for collecting the bundle, or NULL if none is assigned.';
