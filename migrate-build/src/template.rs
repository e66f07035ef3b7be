//! The text `cargo migrate new` writes into a new migration file, and the
//! check that such a file was written: an untouched template is an error,
//! so neither the build, the CLI nor an app at start-up can record a
//! migration whose SQL was never written (its SQL, written later, would
//! then never run).

use crate::scan::Kind;

/// The template `cargo migrate new` writes for migration `version` (as in
/// the file name, zero-padded) `name`: comments only.
#[must_use]
pub fn template(version: &str, name: &str, kind: Kind) -> String {
    match kind {
        Kind::Down => format!(
            "-- Undoes migration {version} {name}: the SQL that restores the schema\n\
             -- from before the up migration (`cargo build` checks that it does).\n\n"
        ),
        _ => format!(
            "-- Migration {version} {name}: write the SQL that changes the schema here.\n\
             -- It runs in a transaction; to run it outside one (VACUUM), make its first\n\
             -- line the directive `-- migrate:no-transaction`.\n\n"
        ),
    }
}

/// Whether `text`, the contents of the file named `file_name`, is the
/// untouched template (byte order mark, CRLF and trailing white space
/// aside).
pub(crate) fn is_untouched(file_name: &str, text: &str, kind: Kind) -> bool {
    let stem = file_name
        .strip_suffix(".up.sql")
        .or_else(|| file_name.strip_suffix(".down.sql"))
        .or_else(|| file_name.strip_suffix(".sql"))
        .unwrap_or(file_name);
    let Some((version, name)) = stem.split_once('_') else {
        return false;
    };
    let plain = |s: &str| {
        s.trim_start_matches('\u{feff}')
            .replace("\r\n", "\n")
            .trim_end()
            .to_owned()
    };
    plain(text) == plain(&template(version, name, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_recognised_and_any_edit_is_not() {
        let up = template("0003", "add_email", Kind::Up);
        assert!(is_untouched("0003_add_email.up.sql", &up, Kind::Up));
        assert!(is_untouched("0003_add_email.sql", &up.replace('\n', "\r\n"), Kind::Up));
        assert!(!is_untouched(
            "0003_add_email.up.sql",
            &format!("{up}ALTER TABLE t ADD x;\n"),
            Kind::Up
        ));
        assert!(
            !is_untouched("0004_add_email.up.sql", &up, Kind::Up),
            "another version's text"
        );
        let down = template("0003", "add_email", Kind::Down);
        assert!(is_untouched("0003_add_email.down.sql", &down, Kind::Down));
    }
}
