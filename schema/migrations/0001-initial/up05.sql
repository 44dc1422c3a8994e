COMMENT ON COLUMN db_metadata.target_version IS 'The version a migration in progress is moving to, or NULL when none is running.';
