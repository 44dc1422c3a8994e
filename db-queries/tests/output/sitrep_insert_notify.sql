SELECT pg_notify($1, $2) -- binds: ["fm_sitrep_published", "7"]
