COMMENT ON COLUMN fm_case.id IS 'Case id, stable across the sitreps that carry the case.';
