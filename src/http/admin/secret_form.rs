//! The secret form of the admin area: description, expiry and a typed value, validated with
//! the errors beside their fields.

use std::collections::HashMap;

use actix_web::HttpResponse;
use serde::Deserialize;

use super::AdminUser;
use crate::client::Client;
use crate::secret::store::SecretRow;

/// Field errors, by field name (`form` for the whole form).
pub(super) type Errors = HashMap<&'static str, String>;

/// A checked secret form: description, expiry, typed value.
pub(super) struct Valid(pub String, pub Option<i64>, pub Option<String>);

/// The secret form as typed. The value is never sent back to the page.
#[derive(Deserialize, Default, serde::Serialize)]
pub struct SecretForm {
    #[serde(default, deserialize_with = "crate::text::line")]
    pub(super) description: String,
    #[serde(default, deserialize_with = "crate::text::line")]
    pub(super) expires: String,
    #[serde(default, skip_serializing)]
    value: String,
}

impl SecretForm {
    /// Description required (so that an empty form is an error, not a surprise secret),
    /// expiry optional (YYYY-MM-DD or DD/MM/YYYY, in the future), value empty or 16+.
    pub(super) fn validate(&self, adding: bool, now: i64) -> Result<Valid, Errors> {
        let mut errors = HashMap::new();
        if self.description.trim().is_empty()
            && self.expires.trim().is_empty()
            && self.value.is_empty()
        {
            errors.insert(
                "form",
                "The form is empty: give the secret a description (what or who uses it).".into(),
            );
            return Err(errors);
        }
        let description = match crate::secret::validate_description(&self.description) {
            Ok(d) if d.is_empty() => {
                errors.insert("description", "A description is required.".into());
                d
            }
            Ok(d) => d,
            Err(e) => {
                errors.insert("description", e);
                String::new()
            }
        };
        let expires_at = match self.expires.trim() {
            "" => None,
            e => match crate::clock::parse_expiry(e, now) {
                Ok(ts) => Some(ts),
                Err(m) => {
                    errors.insert("expires", m);
                    None
                }
            },
        };
        let value = if adding && !self.value.is_empty() {
            if let Err(m) = crate::secret::validate_chosen(&self.value) {
                errors.insert("value", m);
            }
            Some(self.value.clone())
        } else {
            None
        };
        if errors.is_empty() {
            Ok(Valid(description, expires_at, value))
        } else {
            Err(errors)
        }
    }
}

impl SecretForm {
    /// The form as stored, to edit.
    pub(super) fn of(secret: &SecretRow) -> SecretForm {
        SecretForm {
            description: secret.description.clone(),
            expires: secret
                .expires_at
                .map(crate::clock::date)
                .unwrap_or_default(),
            ..SecretForm::default()
        }
    }

    /// The form's page: adding (no `editing`) or editing a secret, with the field errors.
    pub(super) fn page<A>(
        &self,
        admin: &AdminUser<A>,
        client: &Client,
        editing: Option<&SecretRow>,
        errors: &Errors,
    ) -> HttpResponse {
        let mut ctx = admin.client_context(client, "secrets");
        ctx.insert("editing", &editing.is_some());
        if let Some(s) = editing {
            ctx.insert("secret_id", &s.id);
            ctx.insert("hint", &s.hint);
        }
        ctx.insert("form", self);
        // Always defined: the template looks up `errors.FIELD`.
        ctx.insert("errors", errors);
        admin.render(super::form_status(errors), "admin/secret_form.html", &ctx)
    }
}
