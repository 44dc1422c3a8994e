CREATE INDEX IF NOT EXISTS lookup_fm_alert_request_by_id ON fm_alert_request (id);
