COMMENT ON COLUMN fm_case.diagnosis_engine IS 'Name of the diagnosis engine that opened the case.';
