COMMENT ON COLUMN fm_executor_task_status.duration_usec IS 'How long the activation took, in microseconds.';
