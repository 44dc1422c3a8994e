COMMENT ON COLUMN fm_sitrep_archive.time_made_current IS 'When the sitrep became current.';
