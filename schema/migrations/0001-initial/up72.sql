COMMENT ON COLUMN support_bundle.fm_sitrep_id IS 'Provenance: the sitrep an executor was executing when it created this bundle, or NULL if fault management did not create it.';
