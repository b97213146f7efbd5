//! The OpenAPI 3 document of the admin API, generated from the handlers' annotations and
//! served at `/admin/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{clients, users};

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
        clients::list_redirect_uris, clients::add_redirect_uri, clients::remove_redirect_uri,
        clients::list_secrets, clients::add_secret, clients::delete_secret,
        clients::usage, clients::audit_events,
        users::list, users::create, users::update, users::delete, users::end_sessions,
    ),
    components(schemas(super::ApiError)),
    modifiers(&BearerAuth)
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
