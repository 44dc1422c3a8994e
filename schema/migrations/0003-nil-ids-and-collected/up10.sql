CREATE TABLE IF NOT EXISTS fm_collected_resource (
    id UUID NOT NULL PRIMARY KEY CONSTRAINT fm_collected_resource_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000'),
    resource_type TEXT NOT NULL CONSTRAINT fm_collected_resource_type_known CHECK (resource_type IN ('alert', 'support_bundle')),
    time_deleted TIMESTAMPTZ NOT NULL,
    time_collected TIMESTAMPTZ NOT NULL
);
