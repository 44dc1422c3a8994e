COMMENT ON TABLE db_metadata IS 'One row recording which schema version this database is at. Software refuses to run against a version it does not know.';
