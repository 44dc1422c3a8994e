CREATE INDEX IF NOT EXISTS support_bundle_tombstones ON support_bundle (id) WHERE time_deleted IS NOT NULL;
