SELECT "fm_sitrep_archive"."version" FROM "fm_sitrep_archive" ORDER BY "fm_sitrep_archive"."version" DESC LIMIT $1 OFFSET $2 -- binds: [1, 1000]
