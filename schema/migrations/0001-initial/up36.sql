COMMENT ON COLUMN fm_alert_request.class IS 'Alert class, for example hw.pwr.remove.psu.';
