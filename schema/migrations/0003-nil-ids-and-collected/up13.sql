COMMENT ON COLUMN fm_collected_resource.resource_type IS 'Which table the resource was in: alert or support_bundle.';
