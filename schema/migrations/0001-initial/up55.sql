COMMENT ON COLUMN alert.fm_case_id IS 'Provenance: the case that requested this alert, or NULL if fault management did not create it.';
