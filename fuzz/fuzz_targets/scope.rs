//! Scope strings (RFC 6749 3.3): validation of each scope token, splitting and joining, and
//! the consent page's description.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::client::{join_scopes, split_scopes, validate_scope};
use portcullis::oauth::authorization::request::describe_scope;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = validate_scope(text);
    let parts = split_scopes(text);
    for p in &parts {
        if validate_scope(p).is_ok() {
            let _ = describe_scope(p);
        }
    }
    let joined = join_scopes(&parts);
    // Splitting what was joined gives back the same scopes.
    if parts.iter().all(|p| validate_scope(p).is_ok()) {
        assert_eq!(split_scopes(&joined), parts);
    }
});
