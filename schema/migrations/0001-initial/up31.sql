COMMENT ON TABLE fm_alert_request IS 'Alerts that one sitrep asks to exist. The request id is the id of the alert to create.';
