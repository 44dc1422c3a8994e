COMMENT ON COLUMN fm_sitrep.comment IS 'Free-form human-readable note from the creator.';
