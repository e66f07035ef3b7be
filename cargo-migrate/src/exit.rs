//! The exit statuses of `cargo migrate`, as cargo-migrate/README.md lists
//! them. Scripts and CI rely on them: change them never.

use std::process::ExitCode;

/// The command failed; the last line of standard error says why.
pub const FAILURE: u8 = 1;

/// The command line was wrong (clap's own usage errors exit with it).
#[cfg(test)]
pub const USAGE: u8 = 2;

/// `status --exit-code`: the command worked, and the database is not up to
/// date (a migration is pending, modified or unknown). Distinct from
/// [`FAILURE`], so CI can tell "needs `cargo migrate up`" from "broken",
/// as `terraform plan -detailed-exitcode` does with its own 2.
pub const NOT_UP_TO_DATE: u8 = 3;

/// Ctrl-C ended the command (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// [`NOT_UP_TO_DATE`] as an exit code.
pub fn not_up_to_date() -> ExitCode {
    ExitCode::from(NOT_UP_TO_DATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        // clap exits with 2 on a usage error; ours must not collide with it.
        assert_eq!(
            clap::Error::new(clap::error::ErrorKind::UnknownArgument).exit_code(),
            i32::from(USAGE)
        );
        const { assert!(NOT_UP_TO_DATE != FAILURE && NOT_UP_TO_DATE != USAGE && FAILURE != USAGE) };
    }
}
