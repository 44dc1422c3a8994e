COMMENT ON COLUMN fm_executor_task_status.executor_id IS 'The executor that ran the activation.';
