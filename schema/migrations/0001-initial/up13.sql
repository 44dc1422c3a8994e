COMMENT ON COLUMN fm_sitrep.time_created IS 'When the sitrep was built.';
