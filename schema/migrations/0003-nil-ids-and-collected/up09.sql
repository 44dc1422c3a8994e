ALTER TABLE fm_executor_task_status
    DROP CONSTRAINT IF EXISTS fm_executor_task_status_executor_id_not_nil,
    ADD CONSTRAINT fm_executor_task_status_executor_id_not_nil CHECK (executor_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
