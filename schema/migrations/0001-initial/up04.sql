COMMENT ON COLUMN db_metadata.version IS 'The schema version whose migrations have all been applied.';
