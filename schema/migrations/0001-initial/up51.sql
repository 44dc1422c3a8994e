COMMENT ON COLUMN alert.class IS 'Alert class, for example hw.pwr.remove.psu.';
