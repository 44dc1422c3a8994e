DELETE FROM "alert" WHERE ((("alert"."id" = $1) AND ("alert"."time_deleted" IS NULL)) AND ("alert"."fm_case_id" IS NULL)) -- binds: [1d000000-0000-4000-8000-000000000002]
