COMMENT ON COLUMN support_bundle.data_selection IS 'Which data the bundle collects (JSON).';
