COMMENT ON COLUMN fm_alert_request.case_id IS 'The case that asked for the alert.';
