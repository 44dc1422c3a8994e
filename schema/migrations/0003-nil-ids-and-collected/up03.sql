ALTER TABLE fm_case
    DROP CONSTRAINT IF EXISTS fm_case_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_case_opened_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_case_closed_sitrep_id_not_nil,
    ADD CONSTRAINT fm_case_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_case_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_case_opened_sitrep_id_not_nil CHECK (opened_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_case_closed_sitrep_id_not_nil CHECK (closed_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
