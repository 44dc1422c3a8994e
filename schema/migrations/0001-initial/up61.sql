CREATE INDEX IF NOT EXISTS lookup_undispatched_alert ON alert (time_created, id) WHERE time_deleted IS NULL AND time_dispatched IS NULL;
