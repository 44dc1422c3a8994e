DELETE FROM "fm_sitrep_history" WHERE ("fm_sitrep_history"."version" = $1) -- binds: [11]
