DELETE FROM "fm_sitrep_archive" WHERE ("fm_sitrep_archive"."sitrep_id" = ANY($1)) -- binds: [[1d000000-0000-4000-8000-000000000002, 1d000000-0000-4000-8000-000000000003]]
