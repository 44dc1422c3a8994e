COMMENT ON COLUMN support_bundle.time_deleted IS 'When an operator deleted this FM-created bundle (a tombstone that blocks re-creation), or NULL while it is live.';
