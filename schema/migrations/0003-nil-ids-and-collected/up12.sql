COMMENT ON COLUMN fm_collected_resource.id IS 'The hard-deleted resource''s id (unique across both resource types).';
