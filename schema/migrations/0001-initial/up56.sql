COMMENT ON COLUMN alert.fm_sitrep_id IS 'Provenance: the sitrep an executor was executing when it created this alert, or NULL if fault management did not create it.';
