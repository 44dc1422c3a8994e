COMMENT ON COLUMN fm_sitrep.parent_sitrep_id IS 'The sitrep that was current when this one was built, or NULL for the first sitrep. Not a foreign key: the parent may have been pruned.';
