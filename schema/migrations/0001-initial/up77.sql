CREATE INDEX IF NOT EXISTS lookup_live_support_bundle_by_case ON support_bundle (fm_case_id, id) WHERE time_deleted IS NULL;
