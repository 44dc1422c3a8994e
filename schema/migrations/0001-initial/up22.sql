CREATE TABLE IF NOT EXISTS fm_case (
    sitrep_id UUID NOT NULL,
    id UUID NOT NULL,
    diagnosis_engine TEXT NOT NULL,
    opened_sitrep_id UUID NOT NULL,
    closed_sitrep_id UUID,
    comment TEXT NOT NULL,
    PRIMARY KEY (sitrep_id, id)
);
