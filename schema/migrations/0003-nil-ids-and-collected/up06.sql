ALTER TABLE alert
    DROP CONSTRAINT IF EXISTS alert_id_not_nil,
    DROP CONSTRAINT IF EXISTS alert_fm_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS alert_fm_sitrep_id_not_nil,
    ADD CONSTRAINT alert_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT alert_fm_case_id_not_nil CHECK (fm_case_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT alert_fm_sitrep_id_not_nil CHECK (fm_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
