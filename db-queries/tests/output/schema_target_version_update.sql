UPDATE "db_metadata" SET "target_version" = $1 WHERE (("db_metadata"."singleton" = $2) AND ("db_metadata"."version" = $3)) -- binds: [Some(3), true, 2]
