COMMENT ON TABLE alert IS 'Alerts, created by fault management from alert requests or directly by other parts of the system. Rows with time_deleted set are tombstones and invisible to every reader.';
