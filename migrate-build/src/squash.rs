//! Squash baselines in a migrations directory: where a `-- migrate:squashes
//! FIRST-LAST DIGEST` directive may stand (see [`migrate_runtime::Squash`]).

use migrate_runtime::{EarlierSquash, Squash};

use crate::problem::Problem;
use crate::scan::Found;

/// The problems of squash directives in `migrations` (oldest first): only
/// the first migration may be a baseline, it must replace the versions
/// from 1 to its own, and those must not be on disk any more.
#[must_use]
pub fn check(migrations: &[Found]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, m) in migrations.iter().enumerate() {
        let squash = Squash::of(&m.up.text).and_then(Result::ok);
        for earlier in EarlierSquash::all(&m.up.text).into_iter().filter_map(Result::ok) {
            if squash.is_none_or(|s| earlier.squash.last >= s.last) {
                let line =
                    m.up.text
                        .lines()
                        .position(|l| l.trim_start().starts_with("-- migrate:earlier-squash"))
                        .map_or(0, |l| l + 1);
                problems.push(
                    Problem::error(
                        &m.up.display,
                        line,
                        format!(
                            "`-- migrate:earlier-squash {}-{}` must stand under a `-- migrate:squashes 1-N` directive with N above {}",
                            earlier.squash.first, earlier.squash.last, earlier.squash.last
                        ),
                    )
                    .hint("`cargo migrate squash --to N` writes both directives; restore them as it wrote them"),
                );
            }
        }
        let Some(squash) = squash else {
            continue;
        };
        let line =
            m.up.text
                .lines()
                .position(|l| l.trim_start().starts_with("-- migrate:squashes"))
                .map_or(0, |l| l + 1);
        let directive = format!("-- migrate:squashes {}-{}", squash.first, squash.last);
        if i > 0 {
            problems.push(
                Problem::error(
                    &m.up.display,
                    line,
                    format!("`{directive}` is in migration {}, but only the first migration can be a squash baseline (migration {} comes before it)", m.version, migrations[0].version),
                )
                .hint("remove the directive, or the migrations it replaces (`cargo migrate squash --to N` does both)"),
            );
        } else if squash.first != 1 || squash.last != m.version {
            problems.push(
                Problem::error(
                    &m.up.display,
                    line,
                    format!(
                        "`{directive}` must replace the versions from 1 to the baseline's own version {}",
                        m.version
                    ),
                )
                .hint(format!(
                    "write `-- migrate:squashes 1-{}` (`cargo migrate squash` writes it)",
                    m.version
                )),
            );
        }
    }
    problems
}
