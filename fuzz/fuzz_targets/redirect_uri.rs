//! Redirect URI registration (`validate_redirect_uri`, `validate_logo_url`) and matching
//! (`Client::redirect_uri_for`). Input: registered URIs, one per line; the last line is the
//! requested one. A match must be one of the registered strings, or (loopback opt-in) differ
//! from one only in the port.
#![no_main]
#[path = "common.rs"]
mod common;
use libfuzzer_sys::fuzz_target;
use portcullis::client::{validate_logo_url, validate_redirect_uri};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = validate_redirect_uri(text);
    let _ = validate_logo_url(text);
    let mut lines: Vec<&str> = text.split('\n').collect();
    let requested = lines.pop().unwrap_or_default();
    let registered: Vec<String> = lines
        .iter()
        .filter_map(|l| validate_redirect_uri(l).ok())
        .collect();
    for loopback in [false, true] {
        let client = common::client(registered.clone(), loopback);
        if let Some(uri) = client.redirect_uri_for(Some(requested)) {
            // Exact match, or the loopback exception: never a URI on another host.
            if !registered.iter().any(|r| *r == uri) {
                assert!(
                    loopback,
                    "non-exact match without loopback_any_port: {uri:?}"
                );
                let parsed = url::Url::parse(&uri).expect("a matched loopback URI parses");
                assert_eq!(parsed.scheme(), "http");
                match parsed.host() {
                    Some(url::Host::Ipv4(ip)) => assert!(ip.is_loopback()),
                    Some(url::Host::Ipv6(ip)) => assert!(ip.is_loopback()),
                    other => panic!("loopback match on a non-loopback host {other:?}"),
                }
            }
        }
        let _ = client.redirect_uri_for(None);
    }
});
