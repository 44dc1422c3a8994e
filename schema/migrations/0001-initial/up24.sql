COMMENT ON COLUMN fm_case.sitrep_id IS 'The sitrep this row belongs to.';
