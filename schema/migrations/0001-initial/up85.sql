COMMENT ON COLUMN fm_executor_task_status.status IS 'The typed status the activation returned, serialized as JSON.';
