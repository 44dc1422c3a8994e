CREATE TABLE IF NOT EXISTS alert (
    id UUID NOT NULL PRIMARY KEY,
    class TEXT NOT NULL,
    payload JSONB NOT NULL,
    time_created TIMESTAMPTZ NOT NULL,
    time_dispatched TIMESTAMPTZ,
    fm_case_id UUID,
    fm_sitrep_id UUID,
    fm_generation INT8 CONSTRAINT alert_fm_generation_positive CHECK (fm_generation > 0),
    time_deleted TIMESTAMPTZ,
    CONSTRAINT alert_fm_provenance_complete CHECK (
        (fm_case_id IS NULL AND fm_sitrep_id IS NULL AND fm_generation IS NULL)
        OR (fm_case_id IS NOT NULL AND fm_sitrep_id IS NOT NULL AND fm_generation IS NOT NULL)
    )
);
