//! Client assertions (RFC 7523): reading the claimed client without verification, full
//! verification with an HMAC key (header and claims parsing, signature, time checks), and
//! the registered key document (JWKS / PEM) parser. No database involved.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::client::assertion::{
    AssertionKey, claimed_client, parse_keys, validate_keys, verify,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = claimed_client(text);
    let keys = [AssertionKey::hmac(b"0123456789abcdef0123456789abcdef")];
    let _ = verify(
        &keys,
        text,
        "app",
        &["https://issuer.example", "https://issuer.example/token"],
        1_700_000_000,
    );
    if let Ok(parsed) = parse_keys(text) {
        let _ = verify(
            &parsed,
            text,
            "app",
            &["https://issuer.example"],
            1_700_000_000,
        );
    }
    let _ = validate_keys(text);
});
