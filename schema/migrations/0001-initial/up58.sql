COMMENT ON COLUMN alert.time_deleted IS 'When an operator deleted this FM-created alert (a tombstone that blocks re-creation), or NULL while it is live.';
