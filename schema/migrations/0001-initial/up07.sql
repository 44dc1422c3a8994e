COMMENT ON COLUMN db_metadata.time_modified IS 'When the version last changed.';
