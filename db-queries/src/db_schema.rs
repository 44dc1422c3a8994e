//! Diesel definitions of the tables in `schema/dbinit.sql`.
//!
//! A test compares these column by column (name, type, nullability) with the
//! live schema, so an edit here or in the SQL that is not made in both places
//! fails the build's tests.

diesel::table! {
    /// The schema-version row.
    db_metadata (singleton) {
        /// Always true.
        singleton -> Bool,
        /// Applied schema version.
        version -> Int8,
        /// Version a migration in progress moves to.
        target_version -> Nullable<Int8>,
        /// When the schema was created.
        time_created -> Timestamptz,
        /// When the version last changed.
        time_modified -> Timestamptz,
    }
}

diesel::table! {
    /// Immutable sitreps.
    fm_sitrep (id) {
        /// Sitrep id.
        id -> Uuid,
        /// Parent sitrep, NULL for the first.
        parent_sitrep_id -> Nullable<Uuid>,
        /// The FM instance that built it.
        creator_id -> Uuid,
        /// When it was built.
        time_created -> Timestamptz,
        /// Creator's note.
        comment -> Text,
        /// Alert generation.
        alert_generation -> Int8,
        /// Support-bundle generation.
        support_bundle_generation -> Int8,
    }
}

diesel::table! {
    /// The linear history of current sitreps.
    fm_sitrep_history (version) {
        /// Position in the history.
        version -> Int8,
        /// The sitrep made current.
        sitrep_id -> Uuid,
        /// When it became current.
        time_made_current -> Timestamptz,
    }
}

diesel::table! {
    /// Cases, one row per sitrep that carries them.
    fm_case (sitrep_id, id) {
        /// Owning sitrep.
        sitrep_id -> Uuid,
        /// Case id.
        id -> Uuid,
        /// Diagnosis engine name.
        diagnosis_engine -> Text,
        /// Sitrep that opened the case.
        opened_sitrep_id -> Uuid,
        /// Sitrep that closed it, if closed.
        closed_sitrep_id -> Nullable<Uuid>,
        /// Note.
        comment -> Text,
    }
}

diesel::table! {
    /// Alert requests of each sitrep.
    fm_alert_request (sitrep_id, id) {
        /// Owning sitrep.
        sitrep_id -> Uuid,
        /// Id of the alert to create.
        id -> Uuid,
        /// Requesting case.
        case_id -> Uuid,
        /// Sitrep where the request first appeared.
        requested_sitrep_id -> Uuid,
        /// Alert class.
        class -> Text,
        /// Alert payload.
        payload -> Jsonb,
    }
}

diesel::table! {
    /// Support-bundle requests of each sitrep.
    fm_support_bundle_request (sitrep_id, id) {
        /// Owning sitrep.
        sitrep_id -> Uuid,
        /// Id of the bundle to create.
        id -> Uuid,
        /// Requesting case.
        case_id -> Uuid,
        /// Sitrep where the request first appeared.
        requested_sitrep_id -> Uuid,
        /// Why the bundle is wanted.
        reason -> Text,
        /// What to collect.
        data_selection -> Jsonb,
    }
}

diesel::table! {
    /// Alerts; rows with `time_deleted` set are tombstones.
    alert (id) {
        /// Alert id.
        id -> Uuid,
        /// Alert class.
        class -> Text,
        /// Payload.
        payload -> Jsonb,
        /// Creation time.
        time_created -> Timestamptz,
        /// Dispatch time, NULL while queued.
        time_dispatched -> Nullable<Timestamptz>,
        /// Provenance: case.
        fm_case_id -> Nullable<Uuid>,
        /// Provenance: sitrep.
        fm_sitrep_id -> Nullable<Uuid>,
        /// Provenance: alert generation.
        fm_generation -> Nullable<Int8>,
        /// Operator deletion time (tombstone).
        time_deleted -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Support bundles; rows with `time_deleted` set are tombstones.
    support_bundle (id) {
        /// Bundle id.
        id -> Uuid,
        /// Why it was wanted.
        reason -> Text,
        /// What it collects.
        data_selection -> Jsonb,
        /// Lifecycle state.
        state -> Text,
        /// Creation time.
        time_created -> Timestamptz,
        /// Executor collecting it.
        assigned_executor -> Nullable<Uuid>,
        /// Operator comment.
        user_comment -> Nullable<Text>,
        /// Provenance: case.
        fm_case_id -> Nullable<Uuid>,
        /// Provenance: sitrep.
        fm_sitrep_id -> Nullable<Uuid>,
        /// Provenance: support-bundle generation.
        fm_generation -> Nullable<Int8>,
        /// Operator deletion time (tombstone).
        time_deleted -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// Last activation of each task on each executor.
    fm_executor_task_status (executor_id, task_name) {
        /// Executor.
        executor_id -> Uuid,
        /// Task name.
        task_name -> Text,
        /// Activation number.
        iteration -> Int8,
        /// Start time.
        time_started -> Timestamptz,
        /// Duration in microseconds.
        duration_usec -> Int8,
        /// Serialized status.
        status -> Jsonb,
    }
}

diesel::table! {
    /// Pruned sitreps, archived as JSON.
    fm_sitrep_archive (sitrep_id) {
        /// Sitrep id.
        sitrep_id -> Uuid,
        /// History version it had.
        version -> Int8,
        /// When it became current.
        time_made_current -> Timestamptz,
        /// When it was archived.
        time_archived -> Timestamptz,
        /// The whole sitrep.
        sitrep -> Jsonb,
    }
}

diesel::table! {
    /// Ids of FM-created resources that an operator deleted and the sweep
    /// hard-deleted: never to be requested again.
    fm_collected_resource (id) {
        /// The resource's id.
        id -> Uuid,
        /// `alert` or `support_bundle`.
        resource_type -> Text,
        /// When the operator deleted it.
        time_deleted -> Timestamptz,
        /// When the sweep hard-deleted it.
        time_collected -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    db_metadata,
    fm_sitrep,
    fm_sitrep_history,
    fm_case,
    fm_alert_request,
    fm_support_bundle_request,
    alert,
    support_bundle,
    fm_executor_task_status,
    fm_sitrep_archive,
    fm_collected_resource,
);

/// Describes the columns of every table above, for the test that compares
/// them with the live schema. That test also checks that every live table is
/// described here, so a new table cannot be forgotten.
pub fn describe_tables() -> Vec<TableDescription> {
    macro_rules! describe {
        ($($table:ident),* $(,)?) => {
            vec![$(TableDescription {
                name: stringify!($table),
                columns: <<$table::table as diesel::Table>::AllColumns as ColumnList>::columns(),
            }),*]
        };
    }
    describe!(
        db_metadata,
        fm_sitrep,
        fm_sitrep_history,
        fm_case,
        fm_alert_request,
        fm_support_bundle_request,
        alert,
        support_bundle,
        fm_executor_task_status,
        fm_sitrep_archive,
        fm_collected_resource,
    )
}

/// One table as the diesel definitions see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDescription {
    /// Table name.
    pub name: &'static str,
    /// Columns in definition order.
    pub columns: Vec<ColumnDescription>,
}

/// One column as the diesel definitions see it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnDescription {
    /// Column name.
    pub name: &'static str,
    /// PostgreSQL type name as `pg_type.typname` spells it (`uuid`, `int8`, ...).
    pub pg_type: &'static str,
    /// Whether the column may be NULL.
    pub nullable: bool,
}

/// A tuple of diesel columns whose names and SQL types can be listed.
pub trait ColumnList {
    /// The columns, in order.
    fn columns() -> Vec<ColumnDescription>;
}

macro_rules! column_list_for_tuple {
    ($($c:ident),+) => {
        impl<$($c),+> ColumnList for ($($c,)+)
        where
            $($c: diesel::Column + diesel::Expression, <$c as diesel::Expression>::SqlType: PgTypeName,)+
        {
            fn columns() -> Vec<ColumnDescription> {
                vec![$(ColumnDescription {
                    name: <$c as diesel::Column>::NAME,
                    pg_type: <<$c as diesel::Expression>::SqlType as PgTypeName>::NAME,
                    nullable: <<$c as diesel::Expression>::SqlType as PgTypeName>::NULLABLE,
                }),+]
            }
        }
    };
}

column_list_for_tuple!(A);
column_list_for_tuple!(A, B);
column_list_for_tuple!(A, B, C);
column_list_for_tuple!(A, B, C, D);
column_list_for_tuple!(A, B, C, D, E);
column_list_for_tuple!(A, B, C, D, E, F);
column_list_for_tuple!(A, B, C, D, E, F, G);
column_list_for_tuple!(A, B, C, D, E, F, G, H);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I, J);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I, J, K);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
column_list_for_tuple!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);

/// The PostgreSQL name of a diesel SQL type, and whether it is nullable.
pub trait PgTypeName {
    /// `pg_type.typname` of the type.
    const NAME: &'static str;
    /// Whether it is `Nullable<_>`.
    const NULLABLE: bool = false;
}

macro_rules! pg_type_name {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(impl PgTypeName for diesel::sql_types::$ty {
            const NAME: &'static str = $name;
        })*
    };
}

pg_type_name!(
    Bool => "bool",
    Int4 => "int4",
    Int8 => "int8",
    Text => "text",
    Uuid => "uuid",
    Timestamptz => "timestamptz",
    Jsonb => "jsonb",
);

impl<T: PgTypeName + diesel::sql_types::SqlType> PgTypeName for diesel::sql_types::Nullable<T> {
    const NAME: &'static str = T::NAME;
    const NULLABLE: bool = true;
}
