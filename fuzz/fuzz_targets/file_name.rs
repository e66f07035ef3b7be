//! `migrate_build::scan::parse_file_name(name, width)`.
//!
//! Input: the first byte picks the zero-padding width, the rest (UTF-8,
//! lossily) is the file name. Widths 0..=24 cover the configurable range
//! (1..=19) and a little past it; a few byte values pick huge widths, since
//! the function is public and takes any `usize`.
//!
//! Checks: it never panics; when it accepts a name, `to_file_name(width)`
//! gives back exactly that name, the version is in 1..=i64::MAX and the name
//! part is `[a-z0-9_]+`; when it rejects one, a guessed new name (if any) is
//! itself accepted, with the same width.
//!
//! `regressions/file_name/` holds the inputs of defects found here and fixed
//! since (see the README).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrate_build::scan::{Kind, parse_file_name};

/// Widths chosen by the bytes 0xF8..=0xFF.
const HUGE: [usize; 8] = [
    25,
    64,
    1000,
    u16::MAX as usize,
    u16::MAX as usize + 1,
    1 << 20,
    u32::MAX as usize,
    usize::MAX,
];

fn width_of(b: u8) -> usize {
    if b >= 0xF8 {
        HUGE[usize::from(b - 0xF8)]
    } else {
        usize::from(b % 25)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&w, rest)) = data.split_first() else {
        return;
    };
    let width = width_of(w);
    let name = String::from_utf8_lossy(rest);
    match parse_file_name(&name, width) {
        Ok(f) => {
            assert_eq!(
                f.to_file_name(width),
                name,
                "round trip of {name:?} at width {width}: {f:?}"
            );
            assert!(
                f.version >= 1 && i64::try_from(f.version).is_ok(),
                "version of {name:?}: {f:?}"
            );
            assert!(
                !f.name.is_empty()
                    && f.name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "name part of {name:?}: {f:?}"
            );
            let suffix = match f.kind {
                Kind::Up => ".up.sql",
                Kind::Down => ".down.sql",
                Kind::UpOnly => ".sql",
                other => panic!("a kind this target does not know: {other:?}"),
            };
            assert!(name.ends_with(suffix), "kind of {name:?}: {f:?}");
        }
        Err(bad) => {
            assert!(!bad.message.is_empty());
            // The hint and Display must not panic either.
            let _ = bad.to_string();
            if let Some(guess) = &bad.rename_to {
                let again = parse_file_name(guess, width);
                assert!(
                    again.is_ok(),
                    "{name:?} at width {width}: the suggested name {guess:?} is itself rejected: {again:?}"
                );
            }
        }
    }
});
