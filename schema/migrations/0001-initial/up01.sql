CREATE TABLE IF NOT EXISTS db_metadata (
    singleton BOOL NOT NULL PRIMARY KEY CONSTRAINT db_metadata_singleton CHECK (singleton),
    version INT8 NOT NULL CONSTRAINT db_metadata_version_positive CHECK (version > 0),
    target_version INT8,
    time_created TIMESTAMPTZ NOT NULL,
    time_modified TIMESTAMPTZ NOT NULL
);
