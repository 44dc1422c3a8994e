CREATE TABLE IF NOT EXISTS fm_alert_request (
    sitrep_id UUID NOT NULL,
    id UUID NOT NULL,
    case_id UUID NOT NULL,
    requested_sitrep_id UUID NOT NULL,
    class TEXT NOT NULL,
    payload JSONB NOT NULL,
    PRIMARY KEY (sitrep_id, id)
);
