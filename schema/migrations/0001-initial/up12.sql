COMMENT ON COLUMN fm_sitrep.creator_id IS 'Id of the fault-management instance that built this sitrep.';
