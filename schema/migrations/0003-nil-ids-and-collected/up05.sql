ALTER TABLE fm_support_bundle_request
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_requested_sitrep_id_not_nil,
    ADD CONSTRAINT fm_support_bundle_request_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_support_bundle_request_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_support_bundle_request_case_id_not_nil CHECK (case_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_support_bundle_request_requested_sitrep_id_not_nil CHECK (requested_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
