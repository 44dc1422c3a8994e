CREATE TABLE IF NOT EXISTS fm_sitrep_history (
    version INT8 NOT NULL PRIMARY KEY CONSTRAINT fm_sitrep_history_version_positive CHECK (version > 0),
    sitrep_id UUID NOT NULL CONSTRAINT fm_sitrep_history_sitrep_id_key UNIQUE,
    time_made_current TIMESTAMPTZ NOT NULL
);
