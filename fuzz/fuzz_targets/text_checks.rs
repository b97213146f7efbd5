//! The control-character checks of src/text.rs, applied to every text that arrives.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::text::{
    check_multi_line, check_name, check_request_uri, check_single_line, is_invisible_or_bidi,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let single = check_single_line("f", text);
    let multi = check_multi_line("f", text);
    // A single line is a fortiori an acceptable multi-line text.
    if single.is_ok() {
        assert!(
            multi.is_ok(),
            "single line ok but multi-line refused: {text:?}"
        );
    }
    if single.is_err() {
        let _ = single.map_err(|e| e.to_string());
    }
    let _ = check_name("name", text);
    let _ = text.chars().filter(|c| is_invisible_or_bidi(*c)).count();
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    let _ = check_request_uri(path, query);
});
