//! The store's errors, with Postgres failures classified by SQLSTATE.

use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// Errors from the store and the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The schema name breaks `^[a-z_][a-z0-9_]{0,62}$`.
    #[error("invalid schema name \"{0}\": use lowercase letters, digits and _ (at most 63, not starting with a digit)")]
    InvalidSchema(String),
    /// The connection settings could not be read.
    #[error("invalid database settings: {0}")]
    Config(String),
    /// A definition was refused.
    #[error("invalid definition: {0}")]
    Definition(#[from] crate::definition::Error),
    /// Input from the caller was refused (bad variables, unknown process, ...); nothing was written.
    #[error("{0}")]
    BadInput(String),

    /// A message broker a bridge uses could not be reached or refused an operation.
    #[error("broker: {0}")]
    Broker(String),
    /// No such instance.
    #[error("no instance {0}")]
    InstanceNotFound(Uuid),
    /// No such process (or version).
    #[error("no deployed process \"{0}\"")]
    ProcessNotFound(String),
    /// An applied migration's file changed since it ran.
    #[error("migration {version} ({name}) was changed after it was applied: the database has checksum {applied}, the file has {file}. Migrations are immutable; add a new one instead")]
    MigrationChanged {
        /// The migration number.
        version: i32,
        /// Its name.
        name: String,
        /// Checksum recorded in the database.
        applied: String,
        /// Checksum of the file now.
        file: String,
    },
    /// The database has migrations this build does not know (a newer longrun migrated it).
    #[error("the schema has migration {0}, which this version of longrun does not know; upgrade longrun")]
    MigrationUnknown(i32),
    /// A concurrent transaction conflicted (deadlock, serialization failure, stream version);
    /// retrying the call is safe.
    #[error("conflict with a concurrent transaction, retry: {0}")]
    Conflict(String),
    /// The process keeps business keys unique among running instances, and one runs with
    /// this key.
    #[error("process \"{process}\" has a running instance with business key \"{business_key}\" already: {instance}")]
    AlreadyRunning {
        /// The process.
        process: String,
        /// The key.
        business_key: String,
        /// The running instance.
        instance: Uuid,
    },
    /// No such open task: it was completed (perhaps by a concurrent call), or withdrawn with
    /// its step or instance, or never existed.
    #[error("task {0} is not open: it was completed, or its step or instance ended")]
    TaskNotOpen(Uuid),
    /// Someone else holds the task.
    #[error("task {task_id} is held by {assignee}")]
    TaskHeld {
        /// The task.
        task_id: Uuid,
        /// Who holds it.
        assignee: String,
    },
    /// The state machine refused the input.
    #[error("refused by instance {instance}: {rejection}")]
    Rejected {
        /// The instance.
        instance: Uuid,
        /// Why.
        rejection: crate::machine::Rejection,
    },
    /// A Postgres error.
    #[error("database error: {}", pg_message(.0))]
    Postgres(#[source] tokio_postgres::Error),
    /// No connection could be had from the pool.
    #[error("cannot get a database connection: {0}")]
    Pool(String),
    /// Stored data could not be read (e.g. an event this version does not know).
    #[error("corrupt or unknown stored data: {0}")]
    Data(String),
    /// The engine panicked while it applied this input (a bug in longrun): the input was set
    /// aside and nothing of it was written; the engine goes on.
    #[error("the engine panicked while applying this input: {0}")]
    Panicked(String),
}

impl Error {
    /// Whether retrying the same call may succeed (a conflict or a lost connection).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Conflict(_) | Error::Pool(_))
    }

    /// Whether the failure lies in what the call wrote rather than in the database or the
    /// connection: the database refused the data (a value too large for an index, a character
    /// it cannot store, a broken constraint: SQLSTATE classes 22, 23 and 54), stored data could
    /// not be read, or the engine panicked. Such a failure follows the item, so a batch that
    /// fails this way is retried item by item and the item that still fails is set aside;
    /// any other failure (a lost connection, a timeout, a missing privilege) would fail every
    /// item alike and sets nothing aside.
    pub fn lies_in_the_data(&self) -> bool {
        match self {
            Error::Postgres(e) => e.as_db_error().is_some_and(|db| {
                let code = db.code().code();
                code.starts_with("22") || code.starts_with("23") || code.starts_with("54")
            }),
            // A conflict that persists through every retry is the item's own.
            Error::Conflict(_) | Error::Data(_) | Error::Panicked(_) => true,
            _ => false,
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c)
                if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::UNIQUE_VIOLATION =>
            {
                Error::Conflict(pg_message(&e))
            }
            _ => Error::Postgres(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Error::from(e),
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                Error::Pool("no pooled connection became free within the pool wait timeout (all are in use)".into())
            }
            deadpool_postgres::PoolError::Timeout(_) => Error::Pool(
                "the database did not answer within the connect timeout (it accepted the connection but never completed the start-up, or did not accept it)".into(),
            ),
            other => Error::Pool(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Data(e.to_string())
    }
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most useful text of a Postgres error: the server's message and detail, or the client's.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({}; {})", db.message(), db.code().code(), d),
            None => format!("{} ({})", db.message(), db.code().code()),
        },
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}
