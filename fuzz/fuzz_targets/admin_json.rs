//! The admin API's JSON bodies (serde_json into the request types of src/http/api/), then the
//! pure validation a client body goes through (`ClientIn::into_new`). The first byte picks
//! the type.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use portcullis::http::api::clients::ClientIn;
use portcullis::http::api::redirect_uris::RedirectUriIn;
use portcullis::http::api::secrets::SecretIn;
use portcullis::http::api::users::{UserChange, UserIn};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(input) = serde_json::from_slice::<ClientIn>(body) {
                let _ = input.into_new(None);
            }
        }
        1 => {
            if let Ok(input) = serde_json::from_slice::<ClientIn>(body) {
                let existing = common::client(vec!["https://app.example/cb".into()], false);
                let _ = input.into_new(Some(&existing));
            }
        }
        2 => {
            let _ = serde_json::from_slice::<RedirectUriIn>(body);
            let _ = serde_json::from_slice::<SecretIn>(body);
        }
        3 => {
            let _ = serde_json::from_slice::<UserIn>(body);
        }
        _ => {
            let _ = serde_json::from_slice::<UserChange>(body);
        }
    }
});
