COMMENT ON COLUMN fm_executor_task_status.task_name IS 'Background task name, for example fm_rendezvous.';
