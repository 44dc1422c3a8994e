CREATE INDEX IF NOT EXISTS lookup_fm_support_bundle_request_by_id ON fm_support_bundle_request (id);
