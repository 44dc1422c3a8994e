SELECT "fm_alert_request"."id" FROM "fm_alert_request" WHERE ("fm_alert_request"."sitrep_id" = $1) ORDER BY "fm_alert_request"."id" LIMIT $2 -- binds: [51750000-0000-4000-8000-000000000001, 1000]
