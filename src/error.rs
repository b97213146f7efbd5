//! The application error type. Server-side failures are logged with their cause and answered
//! with an opaque body; user errors carry a message meant for the user.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

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

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            e if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            "the server could not complete the request".to_string()
        } else {
            self.to_string()
        };
        let error = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::BAD_REQUEST => "invalid_request",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
            _ => "server_error",
        };
        let mut builder = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            builder.insert_header(("Retry-After", UNAVAILABLE_RETRY_AFTER.to_string()));
        }
        builder
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({ "error": error, "error_description": message }))
    }
}
