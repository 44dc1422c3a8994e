COMMENT ON COLUMN db_metadata.time_created IS 'When the schema was first created.';
