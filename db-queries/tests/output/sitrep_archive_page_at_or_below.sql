SELECT "fm_sitrep_archive"."sitrep_id" FROM "fm_sitrep_archive" WHERE ("fm_sitrep_archive"."version" <= $1) ORDER BY "fm_sitrep_archive"."version" ASC LIMIT $2 -- binds: [40, 100]
