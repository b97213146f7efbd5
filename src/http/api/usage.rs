//! Admin API call for a client's usage (tokens issued per day).

use actix_web::http::StatusCode;
use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiResult, Reader, json};

/// Tokens issued per day.
#[derive(Serialize, ToSchema)]
pub struct Usage {
    /// The last 30 days, oldest first: (YYYY-MM-DD, tokens).
    #[schema(schema_with = usage_days)]
    days: Vec<(String, i64)>,
    total_30_days: i64,
    all_time: i64,
}

/// The schema of [`Usage::days`]: an array of `[date, count]` pairs. (utoipa writes a tuple
/// as `items: [...]`, which OpenAPI 3.1 / JSON Schema 2020-12 does not allow, and schemathesis
/// does not read `prefixItems`: a pair is described as two items, each a date or a count.)
fn usage_days() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type};
    use utoipa::openapi::{KnownFormat, RefOr, Schema, SchemaFormat};
    let date_or_count = AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        )
        .build();
    let pair = ArrayBuilder::new()
        .items(RefOr::T(Schema::AnyOf(date_or_count)))
        .min_items(Some(2))
        .max_items(Some(2))
        .build();
    ArrayBuilder::new()
        .items(RefOr::T(Schema::Array(pair)))
        .build()
}

/// `GET /admin/api/v1/clients/{client_id}/usage`
#[utoipa::path(get, path = "/admin/api/v1/clients/{client_id}/usage", params(("client_id" = String, Path)),
    responses((status = 200, body = Usage)), security(("bearer" = ["portcullis:read"])))]
pub async fn usage(caller: Reader, path: web::Path<String>) -> ApiResult {
    let today = crate::usage::day_of(caller.now());
    let (counts, all_time) = caller
        .on_client(path.into_inner(), move |conn, _, client| {
            Ok((
                crate::client::store::token_counts(conn, client.id, today - 29)?,
                crate::client::store::token_total(conn, client.id)?,
            ))
        })
        .await?;
    let days: Vec<(String, i64)> = (today - 29..=today)
        .map(|d| {
            (
                crate::clock::date(d * crate::limits::DAY),
                counts.iter().find(|c| c.0 == d).map_or(0, |c| c.1),
            )
        })
        .collect();
    let total_30_days = days.iter().map(|d| d.1).sum();
    Ok(json(
        StatusCode::OK,
        &Usage {
            days,
            total_30_days,
            all_time,
        },
    ))
}
