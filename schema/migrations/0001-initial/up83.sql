COMMENT ON COLUMN fm_executor_task_status.time_started IS 'When the activation started.';
