COMMENT ON COLUMN fm_collected_resource.time_deleted IS 'When the operator deleted it (the tombstone''s time_deleted).';
