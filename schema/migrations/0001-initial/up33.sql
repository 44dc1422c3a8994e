COMMENT ON COLUMN fm_alert_request.id IS 'Id of the alert to create: a fresh random v4 UUID made when the request was first added.';
