SELECT "alert"."id", ("alert"."time_deleted" IS NOT NULL) FROM "alert" WHERE ("alert"."id" = ANY($1)) -- binds: [[1d000000-0000-4000-8000-000000000002, 1d000000-0000-4000-8000-000000000003]]
