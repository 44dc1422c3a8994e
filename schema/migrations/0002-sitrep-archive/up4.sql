COMMENT ON COLUMN fm_sitrep_archive.version IS 'The history version at which the sitrep was current.';
