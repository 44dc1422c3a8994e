COMMENT ON COLUMN support_bundle.time_created IS 'When the bundle row was created.';
