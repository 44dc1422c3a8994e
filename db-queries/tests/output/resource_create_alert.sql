INSERT INTO "alert" ("id", "class", "payload", "time_created") VALUES ($1, $2, $3, $4) -- binds: [1d000000-0000-4000-8000-000000000002, "class", Object {}, 2023-11-14T22:13:20Z]
