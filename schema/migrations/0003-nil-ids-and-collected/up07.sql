ALTER TABLE support_bundle
    DROP CONSTRAINT IF EXISTS support_bundle_id_not_nil,
    DROP CONSTRAINT IF EXISTS support_bundle_assigned_executor_not_nil,
    DROP CONSTRAINT IF EXISTS support_bundle_fm_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS support_bundle_fm_sitrep_id_not_nil,
    ADD CONSTRAINT support_bundle_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT support_bundle_assigned_executor_not_nil CHECK (assigned_executor <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT support_bundle_fm_case_id_not_nil CHECK (fm_case_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT support_bundle_fm_sitrep_id_not_nil CHECK (fm_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
