//! What the extractors of both admin faces share: what a call needs ([`Read`] or [`Write`])
//! and [`Acting`], the state and the actor for the audit log, with the blocking runs a
//! handler makes. The extractors themselves, one generic each, live with their face:
//! `http::admin::AdminUser` (a signed-in admin-area user) and `http::api::ApiCaller` (a bearer
//! token); both are checked before the handler runs.

use actix_web::web;

use crate::AppState;
use crate::client::Client;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::manage::Actor;

/// What a call needs: [`Read`] or [`Write`].
pub trait Access: 'static {
    /// True for changes.
    const WRITE: bool;
}

/// Looking: `admin` and `readonly` users; API tokens with `portcullis:read` or
/// `portcullis:admin`.
pub struct Read;

/// Changing: `admin` users; API tokens with `portcullis:admin`.
pub struct Write;

impl Access for Read {
    const WRITE: bool = false;
}

impl Access for Write {
    const WRITE: bool = true;
}

/// Who acts, with the application state: what a handler needs to call a use case.
pub struct Acting {
    /// The application state.
    pub state: web::Data<AppState>,
    /// Who acts, for the audit log.
    pub actor: Actor,
}

/// What a change needs on the blocking thread: the state, who acts and when.
pub struct Change {
    state: web::Data<AppState>,
    /// Who acts, for the audit log.
    pub actor: Actor,
    /// The time of the change.
    pub now: i64,
}

impl Change {
    /// The use cases' context ([`crate::manage::Ctx`]).
    pub fn manage(&self) -> crate::manage::Ctx<'_> {
        self.state.manage()
    }

    /// The application state.
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

impl Acting {
    /// The current time, by the state's clock.
    pub fn now(&self) -> i64 {
        self.state.clock.now()
    }

    fn change(&self) -> Change {
        Change {
            state: self.state.clone(),
            actor: self.actor.clone(),
            now: self.now(),
        }
    }

    /// Runs `f` on a blocking thread with a connection (see [`crate::db::run`]).
    pub async fn run<T, F>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut AnyConnection, &Change) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let change = self.change();
        crate::db::run(&self.state.pool, move |conn| f(conn, &change)).await
    }

    /// The client named by `client_id` (NotFound when there is none).
    pub async fn client(&self, client_id: String) -> Result<Client, AppError> {
        self.on_client(client_id, |_, _, client| Ok(client)).await
    }

    /// Runs `f` on a blocking thread with the client named by `client_id` (NotFound when
    /// there is none): the first step of every page and call about one client.
    pub async fn on_client<T, F>(&self, client_id: String, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut AnyConnection, &Change, Client) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn, change| {
            let client = crate::client::store::get(conn, &client_id)?;
            f(conn, change, client)
        })
        .await
    }
}
