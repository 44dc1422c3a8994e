CREATE TABLE IF NOT EXISTS fm_support_bundle_request (
    sitrep_id UUID NOT NULL,
    id UUID NOT NULL,
    case_id UUID NOT NULL,
    requested_sitrep_id UUID NOT NULL,
    reason TEXT NOT NULL,
    data_selection JSONB NOT NULL,
    PRIMARY KEY (sitrep_id, id)
);
