SELECT "db_metadata"."version" FROM "db_metadata" WHERE ("db_metadata"."singleton" = $1) -- binds: [true]
