CREATE INDEX IF NOT EXISTS lookup_live_support_bundle_by_executor ON support_bundle (assigned_executor, id) WHERE time_deleted IS NULL;
