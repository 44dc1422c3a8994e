COMMENT ON COLUMN fm_alert_request.payload IS 'Alert payload (JSON), copied into the alert when it is created.';
