SELECT COUNT(*), min("support_bundle"."time_deleted") FROM "support_bundle" WHERE ("support_bundle"."time_deleted" IS NOT NULL) -- binds: []
