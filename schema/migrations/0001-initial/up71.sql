COMMENT ON COLUMN support_bundle.fm_case_id IS 'Provenance: the case that requested this bundle, or NULL if fault management did not create it.';
