COMMENT ON COLUMN alert.time_dispatched IS 'When the alert was handed to its receivers, or NULL while it waits in the dispatch queue.';
