COMMENT ON COLUMN fm_case.comment IS 'Free-form human-readable note about the case.';
