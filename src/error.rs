//! The application error type of the domain and storage layers. It knows nothing of HTTP:
//! each face maps it (`http::render::PageError` for pages, `http::api::ApiError` for the JSON
//! API, `oauth::request::OAuthResponse` on the OAuth endpoints, one stderr line in the CLI).
//! Server-side failures are logged with their cause and answered with an opaque message;
//! user errors carry a message meant for the user.

/// Errors of the domain and storage layers.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A database query failed.
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    /// No connection could be taken from the pool.
    #[error("database pool error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// The blocking thread pool is gone (shutdown).
    #[error("blocking task failed: {0}")]
    Blocking(#[from] actix_web::error::BlockingError),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The input is invalid; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The input conflicts with existing data (e.g. a duplicate name).
    #[error("{0}")]
    Conflict(String),
    /// Anything else that is the server's fault.
    #[error("{0}")]
    Internal(String),
}

/// `Retry-After` (seconds) of a 503 answered because the database is unavailable.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 1;

impl AppError {
    /// True when the database cannot be reached right now, so the request may succeed if it is
    /// retried: no pooled connection within `PORTCULLIS_DB_TIMEOUT_MS` (checkout timeout,
    /// connection refused), a connection that broke mid-request, a statement cancelled by
    /// `statement_timeout`, a server shutting down, or SQLite busy. Every mapper answers these
    /// with 503 (`temporarily_unavailable`, RFC 6749 5.2 / 4.1.2.1) and `Retry-After`, never 500.
    /// This is the one place that decides it.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            AppError::Pool(_) => true,
            AppError::Db(Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )) => true,
            AppError::Db(Error::DatabaseError(_, info)) => {
                let m = info.message().to_ascii_lowercase();
                [
                    "statement timeout",
                    "server closed the connection",
                    "no connection to the server",
                    "terminating connection",
                    "connection to server",
                    "could not receive data",
                    "could not send data",
                    "the database system is",
                    "database is locked",
                    // SQLite on a full disk or a read-only file system (issue 11 item 4):
                    // writes fail until an operator frees space; reads go on.
                    "database or disk is full",
                    "readonly database",
                    "disk i/o error",
                ]
                .iter()
                .any(|needle| m.contains(needle))
            }
            AppError::Db(Error::BrokenTransactionManager) => true,
            _ => false,
        }
    }

    /// True when the error is a unique-constraint violation in the database.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            AppError::Db(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}
