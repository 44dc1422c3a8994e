SELECT "fm_sitrep_archive"."sitrep_id" FROM "fm_sitrep_archive" WHERE ("fm_sitrep_archive"."version" = $1) -- binds: [7]
