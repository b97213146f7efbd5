//! The anonymous session cookie's value (after `a.`): base64url of a JSON map.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::http::session::decode_anonymous;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(state) = decode_anonymous(text) {
        // Never a signed-in user from a cookie alone.
        assert!(
            state
                .get("uid")
                .and_then(|v| serde_json::from_str::<i64>(v).ok())
                .is_none()
        );
    }
});
