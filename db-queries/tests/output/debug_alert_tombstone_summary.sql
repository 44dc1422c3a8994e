SELECT COUNT(*), min("alert"."time_deleted") FROM "alert" WHERE ("alert"."time_deleted" IS NOT NULL) -- binds: []
