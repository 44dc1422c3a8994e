COMMENT ON COLUMN alert.payload IS 'Alert payload (JSON).';
