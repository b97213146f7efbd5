//! The authorization request's query string (`AuthorizeParams::parse`), then every check
//! against a registered client (`authorization::request::check`) and the `prompt` parameter.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::authorization::request::{AuthorizeParams, Prompt, check, is_pkce_value};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(params) = AuthorizeParams::parse(query) else {
        return;
    };
    let _ = Prompt::parse(params.prompt.as_deref());
    if let Some(c) = params.code_challenge.as_deref() {
        let _ = is_pkce_value(c);
    }
    let _ = check(&params, None);
    let single = common::client(vec!["https://app.example/cb".into()], false);
    let _ = check(&params, Some(&single));
    let native = common::client(
        vec!["http://127.0.0.1/cb".into(), "http://[::1]:8080/cb".into()],
        true,
    );
    if let Ok(checked) = check(&params, Some(&native)) {
        let _ = checked.redirect_uri;
    }
});
