COMMENT ON COLUMN fm_alert_request.requested_sitrep_id IS 'The sitrep in which this request first appeared.';
