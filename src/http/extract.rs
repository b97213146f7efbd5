//! Who may call: the extractors every admin page and every admin-API call takes, checked
//! before the handler runs. One generic each, over what the call needs ([`Read`] or
//! [`Write`]): [`AdminUser`] (a signed-in admin-area user, see
//! [`crate::http::admin::require`]) and [`ApiCaller`] (a bearer token, see
//! [`crate::http::api`]). Both carry an [`Acting`]: the state and the actor for the audit log.

use std::marker::PhantomData;

use actix_session::Session;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::AppState;
use crate::client::Client;
use crate::db::AnyConnection;
use crate::error::AppError;
use crate::http::render::Pages;
use crate::manage::Actor;
use crate::user::User;

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

/// A signed-in admin-area user whose role allows `A` ([`Viewer`], [`Editor`]). A POST's
/// CSRF token was checked before (by [`crate::http::pages::guard`]).
pub struct AdminUser<A> {
    /// The user.
    pub user: User,
    /// The state and the actor.
    pub acting: Acting,
    /// The session.
    pub session: Session,
    /// The templates.
    pub pages: web::Data<Pages>,
    access: PhantomData<A>,
}

/// A signed-in user who may look at the admin area (`admin` or `readonly`).
pub type Viewer = AdminUser<Read>;

/// A signed-in `admin`.
pub type Editor = AdminUser<Write>;

impl<A> std::ops::Deref for AdminUser<A> {
    type Target = Acting;

    fn deref(&self) -> &Acting {
        &self.acting
    }
}

impl<A: Access> FromRequest for AdminUser<A> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<AdminUser<A>, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = web::Data::<AppState>::extract(&req).await?;
            let pages = web::Data::<Pages>::extract(&req).await?;
            let session = Session::extract(&req).await?;
            let (user, actor) =
                crate::http::admin::require(&state, &session, &req, A::WRITE).await?;
            // An error page of this request shows the user's layout.
            req.extensions_mut()
                .insert(crate::http::render::SignedIn(user.username.clone()));
            Ok(AdminUser {
                user,
                acting: Acting { state, actor },
                session,
                pages,
                access: PhantomData,
            })
        })
    }
}

/// An admin-API caller whose token allows `A` ([`Reader`], [`Writer`]), checked by
/// [`crate::http::api`]'s `caller` before the handler runs.
pub struct ApiCaller<A> {
    /// The state and the actor (`client:CLIENT_ID`).
    pub acting: Acting,
    access: PhantomData<A>,
}

/// An API caller allowed to read (`portcullis:read` or `portcullis:admin`).
pub type Reader = ApiCaller<Read>;

/// An API caller allowed to change things (`portcullis:admin`).
pub type Writer = ApiCaller<Write>;

impl<A> std::ops::Deref for ApiCaller<A> {
    type Target = Acting;

    fn deref(&self) -> &Acting {
        &self.acting
    }
}

impl<A: Access> FromRequest for ApiCaller<A> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ApiCaller<A>, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
                let e = AppError::Internal("no application state".into());
                return Err(crate::http::api::ApiError::from(e).into());
            };
            let actor = crate::http::api::caller(&state, &req, A::WRITE).await?;
            Ok(ApiCaller {
                acting: Acting { state, actor },
                access: PhantomData,
            })
        })
    }
}
