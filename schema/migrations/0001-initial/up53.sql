COMMENT ON COLUMN alert.time_created IS 'When the alert row was created.';
