CREATE INDEX IF NOT EXISTS lookup_live_alert_by_case ON alert (fm_case_id, id) WHERE time_deleted IS NULL;
