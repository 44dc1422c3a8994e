COMMENT ON COLUMN fm_sitrep.alert_generation IS 'Alert generation: equal to the parent''s when the set of alert requests is unchanged, otherwise one more. 1 for the first sitrep.';
