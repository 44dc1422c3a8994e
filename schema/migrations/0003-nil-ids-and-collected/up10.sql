CREATE TABLE IF NOT EXISTS fm_collected_resource (
    id UUID NOT NULL PRIMARY KEY,
    resource_type TEXT NOT NULL CONSTRAINT fm_collected_resource_type_known CHECK (resource_type IN ('alert', 'support_bundle')),
    time_deleted TIMESTAMPTZ NOT NULL,
    time_collected TIMESTAMPTZ NOT NULL
);
