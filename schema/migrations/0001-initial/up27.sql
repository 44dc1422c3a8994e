COMMENT ON COLUMN fm_case.opened_sitrep_id IS 'The sitrep in which the case was opened.';
