COMMENT ON TABLE fm_executor_task_status IS 'The last completed activation of each background task on each executor, for the debug CLI.';
