CREATE TABLE IF NOT EXISTS fm_sitrep_archive (
    sitrep_id UUID NOT NULL PRIMARY KEY,
    version INT8 NOT NULL CONSTRAINT fm_sitrep_archive_version_key UNIQUE,
    time_made_current TIMESTAMPTZ NOT NULL,
    time_archived TIMESTAMPTZ NOT NULL,
    sitrep JSONB NOT NULL
);
