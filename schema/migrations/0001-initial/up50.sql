COMMENT ON COLUMN alert.id IS 'Alert id; for FM-created alerts, the id of the request that asked for it.';
