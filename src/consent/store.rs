//! Consent queries.

use diesel::prelude::*;

use crate::client::ScopeSet;
use crate::db::AnyConnection;
use crate::db::schema::consents;
use crate::error::AppError;
use crate::ids::{ClientKey, UserId};

/// The scopes `user_id` has approved for the client, if any.
pub fn approved(
    conn: &mut AnyConnection,
    user_id: UserId,
    client_pk: ClientKey,
) -> Result<Option<ScopeSet>, AppError> {
    let scope: Option<String> = consents::table
        .find((user_id, client_pk))
        .select(consents::scope)
        .get_result(conn)
        .optional()?;
    Ok(scope.map(|s| ScopeSet::from_stored(&s)))
}

/// Adds `scopes` to what the user approved for the client.
pub fn remember(
    conn: &mut AnyConnection,
    user_id: UserId,
    client_pk: ClientKey,
    scopes: &ScopeSet,
    now: i64,
) -> Result<(), AppError> {
    crate::db::transaction(conn, |conn| {
        let joined = approved(conn, user_id, client_pk)?
            .unwrap_or_default()
            .union(scopes)
            .to_string();
        let n = diesel::update(consents::table.find((user_id, client_pk)))
            .set((consents::scope.eq(&joined), consents::granted_at.eq(now)))
            .execute(conn)?;
        if n == 0 {
            diesel::insert_into(consents::table)
                .values((
                    consents::user_id.eq(user_id),
                    consents::client_id.eq(client_pk),
                    consents::scope.eq(&joined),
                    consents::granted_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}
