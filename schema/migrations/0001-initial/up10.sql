COMMENT ON COLUMN fm_sitrep.id IS 'Sitrep id (random v4 UUID).';
