SELECT "fm_sitrep_history"."version", "fm_sitrep_history"."sitrep_id", "fm_sitrep_history"."time_made_current" FROM "fm_sitrep_history" WHERE ("fm_sitrep_history"."version" = $1) -- binds: [11]
