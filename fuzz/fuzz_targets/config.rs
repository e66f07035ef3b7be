//! `migrate_build::Config::from_manifest_str(text, manifest)`: the
//! `[package.metadata.migrate]` section of a `Cargo.toml` (toml + serde).
//!
//! Input: the manifest's text (UTF-8, lossily).
//!
//! Checks: it never panics; an accepted config has a width in 1..=19 and a
//! non-blank table; a rejection carries at least one error problem, each
//! naming the manifest, with a line that is 0 (whole file) or within
//! 1..=the text's line count.
//!
//! `regressions/config/` holds the inputs of a defect found here and fixed
//! since (see the README).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrate_build::Config;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let manifest = Path::new("app/Cargo.toml");
    match Config::from_manifest_str(&text, manifest) {
        Ok(config) => {
            assert!((1..=19).contains(&config.width), "{text:?}: accepted {config:?}");
            assert!(!config.table.trim().is_empty(), "{text:?}: accepted {config:?}");
        }
        Err(e) => {
            let lines = text.lines().count();
            assert!(e.problems().iter().any(|p| p.is_error()), "{text:?}: {e:?}");
            for p in e.problems() {
                assert_eq!(p.file, manifest, "{text:?}: {p}");
                assert!(
                    p.line == 0 || (1..=lines).contains(&p.line),
                    "{text:?} ({lines} lines): problem at line {}: {p}",
                    p.line
                );
            }
            let _ = e.to_string();
        }
    }
});
