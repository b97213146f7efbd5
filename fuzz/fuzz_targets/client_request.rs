//! The token, introspection and revocation request: form body + Authorization header
//! (`ClientRequest::parse`, then the token endpoint's `TokenRequest::from_client`).
//! Input: first line = Authorization header ("-" = none), the rest = the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::request::{ClientRequest, TokenRequest};

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"-"[..], data),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let authorization = (head != "-").then_some(head);
    for ct in [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
    ] {
        if let Ok(request) = ClientRequest::parse(Some(ct), authorization, body) {
            let _ = request.param("token");
            let _ = request.param("token_type_hint");
            let _ = TokenRequest::from_client(request);
        }
    }
    let _ = ClientRequest::parse(Some("application/json"), authorization, body);
    let _ = ClientRequest::parse(None, authorization, body);
});
