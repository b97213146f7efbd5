//! The OpenAPI 3 document of the admin API, generated from the handlers' annotations and
//! served at `/admin/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, clients, redirect_uris, secrets, usage, users};

/// The admin API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "portcullis admin API",
        description = "Manage clients, redirect URIs, secrets and the audit log. Authenticate with a bearer access token issued by this server to a client allowed the scope portcullis:admin (everything) or portcullis:read (reads)."
    ),
    paths(
        clients::list, clients::create, clients::get, clients::update, clients::delete,
        clients::enable, clients::disable,
        redirect_uris::list_redirect_uris, redirect_uris::add_redirect_uri, redirect_uris::remove_redirect_uri,
        secrets::list_secrets, secrets::add_secret, secrets::delete_secret,
        usage::usage, audit::audit_events,
        users::list, users::create, users::update, users::delete, users::end_sessions,
    ),
    components(schemas(super::ErrorBody)),
    modifiers(&BearerAuth, &ErrorResponses)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Documents, on every operation, the errors every API call can answer with (the handlers'
/// annotations list the answers particular to them): 400 for input refused before or by the
/// handler (unreadable JSON, a wrong content type, an unknown field, control characters, a
/// value the rules refuse), 401 and 403 with their RFC 6750 3 challenge, 404 for a path naming
/// nothing, 409 for a change that conflicts, 503 when the database cannot be reached. All with
/// the [`super::ApiError`] body.
struct ErrorResponses;

impl ErrorResponses {
    fn response(description: &str, challenge: bool) -> utoipa::openapi::Response {
        use utoipa::openapi::{
            ContentBuilder, Ref, ResponseBuilder, header::HeaderBuilder, schema::Type,
        };
        let mut r = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        );
        if challenge {
            r = r.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(utoipa::openapi::schema::Object::with_type(Type::String))
                    .description(Some(
                        "RFC 6750 3: Bearer realm=\"portcullis\", error=\"...\"",
                    ))
                    .build(),
            );
        }
        r.build()
    }
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, RefOr};
        let common: [(&str, &str, bool); 6] = [
            (
                "400",
                "The input was refused: unreadable or not JSON, an unknown field, control characters, or a value the rules refuse (the message says which).",
                false,
            ),
            (
                "401",
                "No access token, or one that is invalid, expired, revoked, not a client_credentials token, or whose client is gone or disabled.",
                true,
            ),
            ("403", "The token lacks the scope this call needs.", true),
            (
                "404",
                "No such client, secret, redirect URI or user.",
                false,
            ),
            (
                "409",
                "The change conflicts with the current state (a name in use, the last admin).",
                false,
            ),
            (
                "503",
                "The server could not complete the request (e.g. the database is unreachable); retry later.",
                false,
            ),
        ];
        let components = openapi.components.get_or_insert_with(Default::default);
        for (code, description, challenge) in common {
            components.responses.insert(
                format!("E{code}"),
                RefOr::T(Self::response(description, challenge)),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, false),
            ];
            for (op, writes) in ops {
                let Some(op) = op.as_mut() else { continue };
                for (code, _, _) in common {
                    let applies = match code {
                        "404" => path.contains('{'),
                        "409" => writes,
                        _ => true,
                    };
                    if applies {
                        op.responses
                            .responses
                            .entry(code.to_string())
                            .or_insert_with(|| {
                                RefOr::Ref(Ref::from_response_name(format!("E{code}")))
                            });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_api_route_is_documented() {
        let doc = serde_json::to_value(<super::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in super::super::ROUTES {
            let documented = paths.get(*path).and_then(|p| p.get(*method)).is_some();
            assert!(documented, "{method} {path} is not in the OpenAPI document");
        }
        // And nothing is documented that is not served.
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    super::super::ROUTES
                        .iter()
                        .any(|(m, p)| m == method && p == path),
                    "{method} {path} is documented but not served"
                );
            }
        }
    }
}
