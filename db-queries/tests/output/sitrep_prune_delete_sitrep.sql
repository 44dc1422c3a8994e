DELETE FROM "fm_sitrep" WHERE ("fm_sitrep"."id" = $1) -- binds: [51750000-0000-4000-8000-000000000001]
