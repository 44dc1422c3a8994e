CREATE TABLE IF NOT EXISTS fm_sitrep (
    id UUID NOT NULL PRIMARY KEY,
    parent_sitrep_id UUID,
    creator_id UUID NOT NULL,
    time_created TIMESTAMPTZ NOT NULL,
    comment TEXT NOT NULL,
    alert_generation INT8 NOT NULL CONSTRAINT fm_sitrep_alert_generation_positive CHECK (alert_generation > 0),
    support_bundle_generation INT8 NOT NULL CONSTRAINT fm_sitrep_support_bundle_generation_positive CHECK (support_bundle_generation > 0)
);
