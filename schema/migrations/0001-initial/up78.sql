CREATE TABLE IF NOT EXISTS fm_executor_task_status (
    executor_id UUID NOT NULL,
    task_name TEXT NOT NULL,
    iteration INT8 NOT NULL CONSTRAINT fm_executor_task_status_iteration_positive CHECK (iteration > 0),
    time_started TIMESTAMPTZ NOT NULL,
    duration_usec INT8 NOT NULL CONSTRAINT fm_executor_task_status_duration_nonnegative CHECK (duration_usec >= 0),
    status JSONB NOT NULL,
    PRIMARY KEY (executor_id, task_name)
);
