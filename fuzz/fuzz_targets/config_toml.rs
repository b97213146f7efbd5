//! The TOML configuration file (`Settings::from_sources`), read from a temporary file, with
//! no environment variables.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::config::Settings;
use std::sync::OnceLock;

fn path() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "portcullis-fuzz-config-{}.toml",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    if std::fs::write(path(), data).is_err() {
        return;
    }
    let _ = Settings::from_sources(Some(path()), |_| None);
});
