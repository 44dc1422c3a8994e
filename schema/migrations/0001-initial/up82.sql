COMMENT ON COLUMN fm_executor_task_status.iteration IS 'Activation number within the executor process, starting at 1.';
