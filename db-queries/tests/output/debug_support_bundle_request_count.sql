SELECT COUNT(*) FROM "fm_support_bundle_request" WHERE ("fm_support_bundle_request"."sitrep_id" = $1) -- binds: [51750000-0000-4000-8000-000000000001]
