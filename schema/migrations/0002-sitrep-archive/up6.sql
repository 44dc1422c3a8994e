COMMENT ON COLUMN fm_sitrep_archive.time_archived IS 'When the pruner archived it.';
