ALTER TABLE fm_sitrep
    DROP CONSTRAINT IF EXISTS fm_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_sitrep_parent_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_sitrep_creator_id_not_nil,
    ADD CONSTRAINT fm_sitrep_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_sitrep_parent_sitrep_id_not_nil CHECK (parent_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_sitrep_creator_id_not_nil CHECK (creator_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
