COMMENT ON COLUMN db_metadata.singleton IS 'Always true: the primary key that keeps this table at one row.';
