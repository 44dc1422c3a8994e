CREATE TABLE IF NOT EXISTS support_bundle (
    id UUID NOT NULL PRIMARY KEY,
    reason TEXT NOT NULL,
    data_selection JSONB NOT NULL,
    state TEXT NOT NULL CONSTRAINT support_bundle_state_known CHECK (state IN ('collecting', 'active', 'destroying', 'failing', 'failed')),
    time_created TIMESTAMPTZ NOT NULL,
    assigned_executor UUID,
    user_comment TEXT,
    fm_case_id UUID,
    fm_sitrep_id UUID,
    fm_generation INT8 CONSTRAINT support_bundle_fm_generation_positive CHECK (fm_generation > 0),
    time_deleted TIMESTAMPTZ,
    CONSTRAINT support_bundle_fm_provenance_complete CHECK (
        (fm_case_id IS NULL AND fm_sitrep_id IS NULL AND fm_generation IS NULL)
        OR (fm_case_id IS NOT NULL AND fm_sitrep_id IS NOT NULL AND fm_generation IS NOT NULL)
    )
);
