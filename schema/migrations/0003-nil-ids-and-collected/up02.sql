ALTER TABLE fm_sitrep_history
    DROP CONSTRAINT IF EXISTS fm_sitrep_history_sitrep_id_not_nil,
    ADD CONSTRAINT fm_sitrep_history_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
