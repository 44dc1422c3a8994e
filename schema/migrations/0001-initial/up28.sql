COMMENT ON COLUMN fm_case.closed_sitrep_id IS 'The sitrep in which the case was closed, or NULL while it is open.';
