-- The current schema of the fault-management execution subsystem.
--
-- This file is the single description of what a fully migrated database looks
-- like. A fresh database may be created from it directly; an existing one is
-- brought here by the migrations under schema/migrations/, and a test checks
-- that both paths give exactly the same catalog.
--
-- Rules for this file:
--   * every statement is idempotent (IF NOT EXISTS, ON CONFLICT DO NOTHING),
--   * every table and every column has a COMMENT,
--   * the SQL stays inside what CockroachDB also accepts,
--   * the schema-version row is written last, so a database with a version
--     row has the whole schema.

-- -------------------------------------------------------------------------
-- Schema version.
-- -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS db_metadata (
    singleton BOOL NOT NULL PRIMARY KEY CONSTRAINT db_metadata_singleton CHECK (singleton),
    version INT8 NOT NULL CONSTRAINT db_metadata_version_positive CHECK (version > 0),
    target_version INT8,
    time_created TIMESTAMPTZ NOT NULL,
    time_modified TIMESTAMPTZ NOT NULL
);

COMMENT ON TABLE db_metadata IS 'One row recording which schema version this database is at. Software refuses to run against a version it does not know.';
COMMENT ON COLUMN db_metadata.singleton IS 'Always true: the primary key that keeps this table at one row.';
COMMENT ON COLUMN db_metadata.version IS 'The schema version whose migrations have all been applied.';
COMMENT ON COLUMN db_metadata.target_version IS 'The version a migration in progress is moving to, or NULL when none is running.';
COMMENT ON COLUMN db_metadata.time_created IS 'When the schema was first created.';
COMMENT ON COLUMN db_metadata.time_modified IS 'When the version last changed.';

-- -------------------------------------------------------------------------
-- Sitreps and their history.
-- -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS fm_sitrep (
    id UUID NOT NULL PRIMARY KEY,
    parent_sitrep_id UUID,
    creator_id UUID NOT NULL,
    time_created TIMESTAMPTZ NOT NULL,
    comment TEXT NOT NULL,
    alert_generation INT8 NOT NULL CONSTRAINT fm_sitrep_alert_generation_positive CHECK (alert_generation > 0),
    support_bundle_generation INT8 NOT NULL CONSTRAINT fm_sitrep_support_bundle_generation_positive CHECK (support_bundle_generation > 0)
);

COMMENT ON TABLE fm_sitrep IS 'Immutable situation reports: the desired state (cases, alert requests, support-bundle requests) produced by fault-management analysis.';
COMMENT ON COLUMN fm_sitrep.id IS 'Sitrep id (random v4 UUID).';
COMMENT ON COLUMN fm_sitrep.parent_sitrep_id IS 'The sitrep that was current when this one was built, or NULL for the first sitrep. Not a foreign key: the parent may have been pruned.';
COMMENT ON COLUMN fm_sitrep.creator_id IS 'Id of the fault-management instance that built this sitrep.';
COMMENT ON COLUMN fm_sitrep.time_created IS 'When the sitrep was built.';
COMMENT ON COLUMN fm_sitrep.comment IS 'Free-form human-readable note from the creator.';
COMMENT ON COLUMN fm_sitrep.alert_generation IS 'Alert generation: equal to the parent''s when the set of alert requests is unchanged, otherwise one more. 1 for the first sitrep.';
COMMENT ON COLUMN fm_sitrep.support_bundle_generation IS 'Support-bundle generation: equal to the parent''s when the set of support-bundle requests is unchanged, otherwise one more. 1 for the first sitrep.';

CREATE TABLE IF NOT EXISTS fm_sitrep_history (
    version INT8 NOT NULL PRIMARY KEY CONSTRAINT fm_sitrep_history_version_positive CHECK (version > 0),
    sitrep_id UUID NOT NULL CONSTRAINT fm_sitrep_history_sitrep_id_key UNIQUE,
    time_made_current TIMESTAMPTZ NOT NULL
);

COMMENT ON TABLE fm_sitrep_history IS 'The linear history of sitreps that became current. The row with the highest version names the current sitrep.';
COMMENT ON COLUMN fm_sitrep_history.version IS 'Position in the history, starting at 1 and increasing by 1 with each published sitrep.';
COMMENT ON COLUMN fm_sitrep_history.sitrep_id IS 'The sitrep that became current at this version.';
COMMENT ON COLUMN fm_sitrep_history.time_made_current IS 'When the sitrep became current.';

CREATE TABLE IF NOT EXISTS fm_case (
    sitrep_id UUID NOT NULL,
    id UUID NOT NULL,
    diagnosis_engine TEXT NOT NULL,
    opened_sitrep_id UUID NOT NULL,
    closed_sitrep_id UUID,
    comment TEXT NOT NULL,
    PRIMARY KEY (sitrep_id, id)
);

COMMENT ON TABLE fm_case IS 'Fault-management cases as they stand in one sitrep. A case open across several sitreps has one row per sitrep.';
COMMENT ON COLUMN fm_case.sitrep_id IS 'The sitrep this row belongs to.';
COMMENT ON COLUMN fm_case.id IS 'Case id, stable across the sitreps that carry the case.';
COMMENT ON COLUMN fm_case.diagnosis_engine IS 'Name of the diagnosis engine that opened the case.';
COMMENT ON COLUMN fm_case.opened_sitrep_id IS 'The sitrep in which the case was opened.';
COMMENT ON COLUMN fm_case.closed_sitrep_id IS 'The sitrep in which the case was closed, or NULL while it is open.';
COMMENT ON COLUMN fm_case.comment IS 'Free-form human-readable note about the case.';

CREATE TABLE IF NOT EXISTS fm_alert_request (
    sitrep_id UUID NOT NULL,
    id UUID NOT NULL,
    case_id UUID NOT NULL,
    requested_sitrep_id UUID NOT NULL,
    class TEXT NOT NULL,
    payload JSONB NOT NULL,
    PRIMARY KEY (sitrep_id, id)
);

COMMENT ON TABLE fm_alert_request IS 'Alerts that one sitrep asks to exist. The request id is the id of the alert to create.';
COMMENT ON COLUMN fm_alert_request.sitrep_id IS 'The sitrep that carries this request.';
COMMENT ON COLUMN fm_alert_request.id IS 'Id of the alert to create: a fresh random v4 UUID made when the request was first added.';
COMMENT ON COLUMN fm_alert_request.case_id IS 'The case that asked for the alert.';
COMMENT ON COLUMN fm_alert_request.requested_sitrep_id IS 'The sitrep in which this request first appeared.';
COMMENT ON COLUMN fm_alert_request.class IS 'Alert class, for example hw.pwr.remove.psu.';
COMMENT ON COLUMN fm_alert_request.payload IS 'Alert payload (JSON), copied into the alert when it is created.';

CREATE INDEX IF NOT EXISTS lookup_fm_alert_request_by_id ON fm_alert_request (id);

CREATE TABLE IF NOT EXISTS fm_support_bundle_request (
    sitrep_id UUID NOT NULL,
    id UUID NOT NULL,
    case_id UUID NOT NULL,
    requested_sitrep_id UUID NOT NULL,
    reason TEXT NOT NULL,
    data_selection JSONB NOT NULL,
    PRIMARY KEY (sitrep_id, id)
);

COMMENT ON TABLE fm_support_bundle_request IS 'Support bundles that one sitrep asks to exist. The request id is the id of the bundle to create.';
COMMENT ON COLUMN fm_support_bundle_request.sitrep_id IS 'The sitrep that carries this request.';
COMMENT ON COLUMN fm_support_bundle_request.id IS 'Id of the support bundle to create: a fresh random v4 UUID made when the request was first added.';
COMMENT ON COLUMN fm_support_bundle_request.case_id IS 'The case that asked for the bundle.';
COMMENT ON COLUMN fm_support_bundle_request.requested_sitrep_id IS 'The sitrep in which this request first appeared.';
COMMENT ON COLUMN fm_support_bundle_request.reason IS 'Why the bundle is wanted, shown to operators.';
COMMENT ON COLUMN fm_support_bundle_request.data_selection IS 'Which data the bundle should collect (JSON).';

CREATE INDEX IF NOT EXISTS lookup_fm_support_bundle_request_by_id ON fm_support_bundle_request (id);

-- -------------------------------------------------------------------------
-- Resources: alerts and support bundles.
--
-- Rows created by fault management carry provenance (fm_case_id,
-- fm_sitrep_id, fm_generation) and are soft-deleted by operators (a
-- tombstone: time_deleted set), so that no executor can re-create them.
-- Every reader filters on time_deleted IS NULL; the sweep walks the
-- tombstone-only partial index.
-- -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS alert (
    id UUID NOT NULL PRIMARY KEY,
    class TEXT NOT NULL,
    payload JSONB NOT NULL,
    time_created TIMESTAMPTZ NOT NULL,
    time_dispatched TIMESTAMPTZ,
    fm_case_id UUID,
    fm_sitrep_id UUID,
    fm_generation INT8 CONSTRAINT alert_fm_generation_positive CHECK (fm_generation > 0),
    time_deleted TIMESTAMPTZ,
    CONSTRAINT alert_fm_provenance_complete CHECK (
        (fm_case_id IS NULL AND fm_sitrep_id IS NULL AND fm_generation IS NULL)
        OR (fm_case_id IS NOT NULL AND fm_sitrep_id IS NOT NULL AND fm_generation IS NOT NULL)
    )
);

COMMENT ON TABLE alert IS 'Alerts, created by fault management from alert requests or directly by other parts of the system. Rows with time_deleted set are tombstones and invisible to every reader.';
COMMENT ON COLUMN alert.id IS 'Alert id; for FM-created alerts, the id of the request that asked for it.';
COMMENT ON COLUMN alert.class IS 'Alert class, for example hw.pwr.remove.psu.';
COMMENT ON COLUMN alert.payload IS 'Alert payload (JSON).';
COMMENT ON COLUMN alert.time_created IS 'When the alert row was created.';
COMMENT ON COLUMN alert.time_dispatched IS 'When the alert was handed to its receivers, or NULL while it waits in the dispatch queue.';
COMMENT ON COLUMN alert.fm_case_id IS 'Provenance: the case that requested this alert, or NULL if fault management did not create it.';
COMMENT ON COLUMN alert.fm_sitrep_id IS 'Provenance: the sitrep an executor was executing when it created this alert, or NULL if fault management did not create it.';
COMMENT ON COLUMN alert.fm_generation IS 'Provenance: the alert generation of that sitrep, or NULL if fault management did not create it. The sweep compares it with the executing sitrep''s generation.';
COMMENT ON COLUMN alert.time_deleted IS 'When an operator deleted this FM-created alert (a tombstone that blocks re-creation), or NULL while it is live.';

CREATE INDEX IF NOT EXISTS alert_tombstones ON alert (id) WHERE time_deleted IS NOT NULL;
CREATE INDEX IF NOT EXISTS lookup_live_alert_by_case ON alert (fm_case_id, id) WHERE time_deleted IS NULL;
CREATE INDEX IF NOT EXISTS lookup_undispatched_alert ON alert (time_created, id) WHERE time_deleted IS NULL AND time_dispatched IS NULL;

CREATE TABLE IF NOT EXISTS support_bundle (
    id UUID NOT NULL PRIMARY KEY,
    reason TEXT NOT NULL,
    data_selection JSONB NOT NULL,
    state TEXT NOT NULL CONSTRAINT support_bundle_state_known CHECK (state IN ('collecting', 'active', 'destroying', 'failing', 'failed')),
    time_created TIMESTAMPTZ NOT NULL,
    assigned_executor UUID,
    user_comment TEXT,
    fm_case_id UUID,
    fm_sitrep_id UUID,
    fm_generation INT8 CONSTRAINT support_bundle_fm_generation_positive CHECK (fm_generation > 0),
    time_deleted TIMESTAMPTZ,
    CONSTRAINT support_bundle_fm_provenance_complete CHECK (
        (fm_case_id IS NULL AND fm_sitrep_id IS NULL AND fm_generation IS NULL)
        OR (fm_case_id IS NOT NULL AND fm_sitrep_id IS NOT NULL AND fm_generation IS NOT NULL)
    )
);

COMMENT ON TABLE support_bundle IS 'Support bundles, created by fault management from support-bundle requests or directly by operators. Rows with time_deleted set are tombstones and invisible to every reader.';
COMMENT ON COLUMN support_bundle.id IS 'Bundle id; for FM-created bundles, the id of the request that asked for it.';
COMMENT ON COLUMN support_bundle.reason IS 'Why the bundle was wanted.';
COMMENT ON COLUMN support_bundle.data_selection IS 'Which data the bundle collects (JSON).';
COMMENT ON COLUMN support_bundle.state IS 'Lifecycle state: collecting, active, destroying, failing or failed.';
COMMENT ON COLUMN support_bundle.time_created IS 'When the bundle row was created.';
COMMENT ON COLUMN support_bundle.assigned_executor IS 'The executor responsible for collecting the bundle, or NULL if none is assigned.';
COMMENT ON COLUMN support_bundle.user_comment IS 'Operator-supplied comment, or NULL.';
COMMENT ON COLUMN support_bundle.fm_case_id IS 'Provenance: the case that requested this bundle, or NULL if fault management did not create it.';
COMMENT ON COLUMN support_bundle.fm_sitrep_id IS 'Provenance: the sitrep an executor was executing when it created this bundle, or NULL if fault management did not create it.';
COMMENT ON COLUMN support_bundle.fm_generation IS 'Provenance: the support-bundle generation of that sitrep, or NULL if fault management did not create it. The sweep compares it with the executing sitrep''s generation.';
COMMENT ON COLUMN support_bundle.time_deleted IS 'When an operator deleted this FM-created bundle (a tombstone that blocks re-creation), or NULL while it is live.';

CREATE INDEX IF NOT EXISTS support_bundle_tombstones ON support_bundle (id) WHERE time_deleted IS NOT NULL;
CREATE INDEX IF NOT EXISTS lookup_live_support_bundle_by_executor ON support_bundle (assigned_executor, id) WHERE time_deleted IS NULL;
CREATE INDEX IF NOT EXISTS lookup_live_support_bundle_by_case ON support_bundle (fm_case_id, id) WHERE time_deleted IS NULL;

-- -------------------------------------------------------------------------
-- Archive of pruned sitreps.
-- -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS fm_sitrep_archive (
    sitrep_id UUID NOT NULL PRIMARY KEY,
    version INT8 NOT NULL CONSTRAINT fm_sitrep_archive_version_key UNIQUE,
    time_made_current TIMESTAMPTZ NOT NULL,
    time_archived TIMESTAMPTZ NOT NULL,
    sitrep JSONB NOT NULL
);

COMMENT ON TABLE fm_sitrep_archive IS 'Sitreps removed by the history pruner, kept as JSON so that debugging survives pruning. Bounded: the pruner keeps only the newest entries.';
COMMENT ON COLUMN fm_sitrep_archive.sitrep_id IS 'The archived sitrep''s id.';
COMMENT ON COLUMN fm_sitrep_archive.version IS 'The history version at which the sitrep was current.';
COMMENT ON COLUMN fm_sitrep_archive.time_made_current IS 'When the sitrep became current.';
COMMENT ON COLUMN fm_sitrep_archive.time_archived IS 'When the pruner archived it.';
COMMENT ON COLUMN fm_sitrep_archive.sitrep IS 'The sitrep in the JSON form that fm-dev sitrep publish reads, plus an "archive" object saying whether it is complete, truncated to the archive''s size bounds (with what was omitted), or failed (with the error).';

-- -------------------------------------------------------------------------
-- Executor status.
-- -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS fm_executor_task_status (
    executor_id UUID NOT NULL,
    task_name TEXT NOT NULL,
    iteration INT8 NOT NULL CONSTRAINT fm_executor_task_status_iteration_positive CHECK (iteration > 0),
    time_started TIMESTAMPTZ NOT NULL,
    duration_usec INT8 NOT NULL CONSTRAINT fm_executor_task_status_duration_nonnegative CHECK (duration_usec >= 0),
    status JSONB NOT NULL,
    PRIMARY KEY (executor_id, task_name)
);

COMMENT ON TABLE fm_executor_task_status IS 'The last completed activation of each background task on each executor, for the debug CLI.';
COMMENT ON COLUMN fm_executor_task_status.executor_id IS 'The executor that ran the activation.';
COMMENT ON COLUMN fm_executor_task_status.task_name IS 'Background task name, for example fm_rendezvous.';
COMMENT ON COLUMN fm_executor_task_status.iteration IS 'Activation number within the executor process, starting at 1.';
COMMENT ON COLUMN fm_executor_task_status.time_started IS 'When the activation started.';
COMMENT ON COLUMN fm_executor_task_status.duration_usec IS 'How long the activation took, in microseconds.';
COMMENT ON COLUMN fm_executor_task_status.status IS 'The typed status the activation returned, serialized as JSON.';

-- -------------------------------------------------------------------------
-- No nil ids.
--
-- Every id column refuses the nil UUID, so no writer can bring back the
-- class of fault where a row with id 00000000-... hid below a keyset
-- cursor. NOT VALID: a database migrated from an older version may hold
-- such rows already; the constraint checks every new write without
-- refusing the migration, and the readers' cursors start unbounded so even
-- those rows are read.
-- -------------------------------------------------------------------------

ALTER TABLE fm_sitrep
    DROP CONSTRAINT IF EXISTS fm_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_sitrep_parent_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_sitrep_creator_id_not_nil,
    ADD CONSTRAINT fm_sitrep_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_sitrep_parent_sitrep_id_not_nil CHECK (parent_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_sitrep_creator_id_not_nil CHECK (creator_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE fm_sitrep_history
    DROP CONSTRAINT IF EXISTS fm_sitrep_history_sitrep_id_not_nil,
    ADD CONSTRAINT fm_sitrep_history_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE fm_case
    DROP CONSTRAINT IF EXISTS fm_case_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_case_opened_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_case_closed_sitrep_id_not_nil,
    ADD CONSTRAINT fm_case_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_case_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_case_opened_sitrep_id_not_nil CHECK (opened_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_case_closed_sitrep_id_not_nil CHECK (closed_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE fm_alert_request
    DROP CONSTRAINT IF EXISTS fm_alert_request_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_alert_request_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_alert_request_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_alert_request_requested_sitrep_id_not_nil,
    ADD CONSTRAINT fm_alert_request_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_alert_request_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_alert_request_case_id_not_nil CHECK (case_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_alert_request_requested_sitrep_id_not_nil CHECK (requested_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE fm_support_bundle_request
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_sitrep_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS fm_support_bundle_request_requested_sitrep_id_not_nil,
    ADD CONSTRAINT fm_support_bundle_request_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_support_bundle_request_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_support_bundle_request_case_id_not_nil CHECK (case_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT fm_support_bundle_request_requested_sitrep_id_not_nil CHECK (requested_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE alert
    DROP CONSTRAINT IF EXISTS alert_id_not_nil,
    DROP CONSTRAINT IF EXISTS alert_fm_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS alert_fm_sitrep_id_not_nil,
    ADD CONSTRAINT alert_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT alert_fm_case_id_not_nil CHECK (fm_case_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT alert_fm_sitrep_id_not_nil CHECK (fm_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE support_bundle
    DROP CONSTRAINT IF EXISTS support_bundle_id_not_nil,
    DROP CONSTRAINT IF EXISTS support_bundle_assigned_executor_not_nil,
    DROP CONSTRAINT IF EXISTS support_bundle_fm_case_id_not_nil,
    DROP CONSTRAINT IF EXISTS support_bundle_fm_sitrep_id_not_nil,
    ADD CONSTRAINT support_bundle_id_not_nil CHECK (id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT support_bundle_assigned_executor_not_nil CHECK (assigned_executor <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT support_bundle_fm_case_id_not_nil CHECK (fm_case_id <> '00000000-0000-0000-0000-000000000000') NOT VALID,
    ADD CONSTRAINT support_bundle_fm_sitrep_id_not_nil CHECK (fm_sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE fm_sitrep_archive
    DROP CONSTRAINT IF EXISTS fm_sitrep_archive_sitrep_id_not_nil,
    ADD CONSTRAINT fm_sitrep_archive_sitrep_id_not_nil CHECK (sitrep_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;
ALTER TABLE fm_executor_task_status
    DROP CONSTRAINT IF EXISTS fm_executor_task_status_executor_id_not_nil,
    ADD CONSTRAINT fm_executor_task_status_executor_id_not_nil CHECK (executor_id <> '00000000-0000-0000-0000-000000000000') NOT VALID;


-- -------------------------------------------------------------------------
-- The ledger of collected resources. Its id has no nil check: it records
-- what the sweep removed, and a nil id that predates version 3 must be
-- recorded like any other.
-- -------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS fm_collected_resource (
    id UUID NOT NULL PRIMARY KEY,
    resource_type TEXT NOT NULL CONSTRAINT fm_collected_resource_type_known CHECK (resource_type IN ('alert', 'support_bundle')),
    time_deleted TIMESTAMPTZ NOT NULL,
    time_collected TIMESTAMPTZ NOT NULL
);

COMMENT ON TABLE fm_collected_resource IS 'Ids of FM-created alerts and support bundles that an operator deleted and the tombstone sweep then hard-deleted. Written by the sweep in the statement that hard-deletes, so it grows only with operator deletes; publishing refuses a new request naming one of these ids, whatever sitreps are still retained.';
COMMENT ON COLUMN fm_collected_resource.id IS 'The hard-deleted resource''s id (unique across both resource types).';
COMMENT ON COLUMN fm_collected_resource.resource_type IS 'Which table the resource was in: alert or support_bundle.';
COMMENT ON COLUMN fm_collected_resource.time_deleted IS 'When the operator deleted it (the tombstone''s time_deleted).';
COMMENT ON COLUMN fm_collected_resource.time_collected IS 'When the sweep hard-deleted the tombstone.';

-- -------------------------------------------------------------------------
-- The schema-version row, written last.
-- -------------------------------------------------------------------------

INSERT INTO db_metadata (singleton, version, target_version, time_created, time_modified)
    VALUES (true, 3, NULL, now(), now())
    ON CONFLICT (singleton) DO NOTHING;
