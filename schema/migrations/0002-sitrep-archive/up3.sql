COMMENT ON COLUMN fm_sitrep_archive.sitrep_id IS 'The archived sitrep''s id.';
