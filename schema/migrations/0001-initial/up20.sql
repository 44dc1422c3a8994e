COMMENT ON COLUMN fm_sitrep_history.sitrep_id IS 'The sitrep that became current at this version.';
