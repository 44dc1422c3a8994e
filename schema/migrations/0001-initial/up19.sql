COMMENT ON COLUMN fm_sitrep_history.version IS 'Position in the history, starting at 1 and increasing by 1 with each published sitrep.';
