COMMENT ON COLUMN fm_collected_resource.time_collected IS 'When the sweep hard-deleted the tombstone.';
