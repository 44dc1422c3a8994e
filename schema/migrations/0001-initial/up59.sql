CREATE INDEX IF NOT EXISTS alert_tombstones ON alert (id) WHERE time_deleted IS NOT NULL;
