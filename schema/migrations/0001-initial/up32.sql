COMMENT ON COLUMN fm_alert_request.sitrep_id IS 'The sitrep that carries this request.';
