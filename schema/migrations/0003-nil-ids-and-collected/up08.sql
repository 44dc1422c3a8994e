ALTER TABLE fm_sitrep_archive
    DROP CONSTRAINT IF EXISTS fm_sitrep_archive_sitrep_id_not_nil,
    ADD CONSTRAINT fm_sitrep_archive_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
