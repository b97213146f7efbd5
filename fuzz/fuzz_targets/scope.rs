//! Scope strings (RFC 6749 3.3): validation of each scope token, parsing into a `ScopeSet`,
//! writing it back, and the consent page's description.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::client::{ScopeSet, validate_scope};
use portcullis::oauth::authorization::request::describe_scope;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = validate_scope(text);
    let stored = ScopeSet::from_stored(text);
    for s in stored.iter() {
        if validate_scope(s).is_ok() {
            let _ = describe_scope(s);
        }
    }
    if let Ok(set) = ScopeSet::parse(text) {
        // A parsed set is what its text reads back as, sorted without repeats, and each of
        // its scopes is valid and in it.
        assert_eq!(ScopeSet::from_stored(&set.to_string()), set);
        assert_eq!(ScopeSet::parse(&set.to_string()), Ok(set.clone()));
        assert!(set.iter().all(|s| validate_scope(s).is_ok() && set.contains(s)));
        assert!(set.iter().zip(set.iter().skip(1)).all(|(a, b)| a < b));
        assert_eq!(set, stored);
    }
});
