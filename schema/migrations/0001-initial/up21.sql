COMMENT ON COLUMN fm_sitrep_history.time_made_current IS 'When the sitrep became current.';
