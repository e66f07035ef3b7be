//! The plan: which migrations to run, in which direction and order, or why
//! the history refuses. A pure function of the code's migrations, the
//! database's history, the policy and the target, so every backend plans
//! the same way and the rules are tested without a database.

use std::collections::BTreeSet;

use crate::{Applied, Checksum, Direction, Error, Migration, Result, Script};

/// Which disagreements between history and code are let through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    /// An applied migration whose file or name changed.
    pub(crate) allow_modified: bool,
    /// Applied migrations the code does not have.
    pub(crate) allow_unknown: bool,
    /// A pending migration below an applied one.
    pub(crate) allow_out_of_order: bool,
    /// Contract migrations (`-- migrate:phase contract`) are applied;
    /// otherwise the plan stops before the first pending one.
    pub(crate) contract: bool,
}

/// One step of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Planned<'m> {
    pub(crate) migration: &'m Migration,
    pub(crate) direction: Direction,
}

impl<'m> Planned<'m> {
    /// Applying `migration`.
    pub(crate) fn up(migration: &'m Migration) -> Self {
        Self {
            migration,
            direction: Direction::Up,
        }
    }

    /// Rolling `migration` back.
    pub(crate) fn down(migration: &'m Migration) -> Self {
        Self {
            migration,
            direction: Direction::Down,
        }
    }

    /// The script this step runs (`None`: a down the migration does not have).
    pub(crate) fn script(&self) -> Option<&'m Script> {
        match self.direction {
            Direction::Up => Some(self.migration.up()),
            Direction::Down => self.migration.down(),
        }
    }
}

/// The migration with `version`, in a list sorted by version.
pub(crate) fn find(migrations: &[Migration], version: u64) -> Option<&Migration> {
    migrations
        .binary_search_by_key(&version, Migration::version)
        .ok()
        .map(|i| &migrations[i])
}

/// Whether the tracking row `a` records exactly `m` (same name and checksum).
pub(crate) fn matches(m: &Migration, a: &Applied) -> bool {
    a.name == m.name() && Some(m.checksum()) == Checksum::parse(&a.checksum)
}

/// The error for rolling back a migration without a down script.
pub(crate) fn irreversible(m: &Migration) -> Error {
    Error::Irreversible {
        version: m.version(),
        name: m.name().to_owned(),
        file: m.up().file().to_owned(),
    }
}

/// Checks that `migrations` are in strictly ascending version order.
pub(crate) fn check_set(migrations: &[Migration]) -> Result<()> {
    for pair in migrations.windows(2) {
        if pair[0].version() >= pair[1].version() {
            return Err(Error::InvalidSet {
                message: format!(
                    "migration {} `{}` comes after {} `{}`; versions must be unique and ascending",
                    pair[1].version(),
                    pair[1].name(),
                    pair[0].version(),
                    pair[0].name()
                ),
            });
        }
    }
    Ok(())
}

/// The first pending contract migration up to `target` (`None`: the
/// latest), which the plan stops before unless `policy` applies contracts.
/// `history` is the one [`plan`] checked.
pub(crate) fn held<'m>(
    migrations: &'m [Migration],
    history: &[Applied],
    policy: Policy,
    target: Option<u64>,
) -> Option<&'m Migration> {
    if policy.contract {
        return None;
    }
    let applied: BTreeSet<u64> = history.iter().map(|a| a.version).collect();
    migrations
        .iter()
        .take_while(|m| m.version() <= target.unwrap_or(u64::MAX))
        .find(|m| m.is_contract() && !applied.contains(&m.version()))
}

/// Checks `history` (oldest first) against `migrations` (sorted, see
/// [`check_set`]) and plans the steps towards `target` (`None`: the
/// latest): downs first, newest first, then ups, oldest first.
///
/// Refuses, before any step, a modified or renamed applied migration, an
/// unknown applied one, or an out-of-order pending one (unless `policy`
/// allows it), and a rollback of a migration without a down script or one
/// the code does not have. The ups stop before the first pending contract
/// migration ([`held`]) unless `policy` applies contracts.
pub(crate) fn plan<'m>(
    migrations: &'m [Migration],
    history: &[Applied],
    policy: Policy,
    target: Option<u64>,
) -> Result<Vec<Planned<'m>>> {
    let mut unknown = Vec::new();
    let mut applied = BTreeSet::new();
    for a in history {
        match find(migrations, a.version) {
            None => unknown.push((a.version, a.name.clone())),
            Some(m) => {
                applied.insert(a.version);
                if policy.allow_modified {
                    continue;
                }
                if a.name != m.name() {
                    return Err(Error::Renamed {
                        version: m.version(),
                        applied_name: a.name.clone(),
                        name: m.name().to_owned(),
                        file: m.up().file().to_owned(),
                    });
                }
                if Some(m.checksum()) != Checksum::parse(&a.checksum) {
                    return Err(Error::Modified {
                        version: m.version(),
                        name: m.name().to_owned(),
                        file: m.up().file().to_owned(),
                        applied: a.checksum.clone(),
                        current: m.checksum().to_string(),
                    });
                }
            }
        }
    }
    if !unknown.is_empty() && !policy.allow_unknown {
        return Err(Error::UnknownApplied { versions: unknown });
    }
    let limit = target.unwrap_or(u64::MAX);
    let mut steps = Vec::new();
    // Downs: applied above the target, newest first.
    for a in history.iter().rev().take_while(|a| a.version > limit) {
        let Some(m) = find(migrations, a.version) else {
            return Err(Error::UnknownRollback {
                version: a.version,
                name: a.name.clone(),
            });
        };
        if m.down().is_none() {
            return Err(irreversible(m));
        }
        steps.push(Planned::down(m));
    }
    // Ups: pending up to the target, oldest first.
    let latest_kept = history.iter().map(|a| a.version).filter(|&v| v <= limit).max();
    let stop = held(migrations, history, policy, target).map_or(limit, |h| h.version() - 1);
    for m in migrations.iter().take_while(|m| m.version() <= stop) {
        if applied.contains(&m.version()) {
            continue;
        }
        if let Some(latest) = latest_kept.filter(|&l| l > m.version())
            && !policy.allow_out_of_order
        {
            return Err(Error::OutOfOrder {
                version: m.version(),
                name: m.name().to_owned(),
                file: m.up().file().to_owned(),
                latest_applied: latest,
            });
        }
        steps.push(Planned::up(m));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(version: u64, down: bool) -> Migration {
        let name = format!("m{version}");
        let up = Script::new(
            format!("CREATE TABLE t{version} (x);"),
            format!("{version:04}_{name}.up.sql"),
        );
        let m = Migration::new(version, name.clone(), up);
        if down {
            m.with_down(Script::new(
                format!("DROP TABLE t{version};"),
                format!("{version:04}_{name}.down.sql"),
            ))
        } else {
            m
        }
    }

    /// Migrations 1 to 4; 3 has no down script.
    fn code() -> Vec<Migration> {
        vec![
            migration(1, true),
            migration(2, true),
            migration(3, false),
            migration(4, true),
        ]
    }

    /// A tracking row for `version` as the code has it.
    fn row(version: u64) -> Applied {
        let m = migration(version, true);
        Applied {
            version,
            name: m.name().to_owned(),
            checksum: m.checksum().to_string(),
            applied_at: "2026-01-01T00:00:00.000Z".to_owned(),
            duration_ms: 0,
        }
    }

    fn history(versions: &[u64]) -> Vec<Applied> {
        versions.iter().map(|&v| row(v)).collect()
    }

    /// The plan as `up 1, down 2`, or the refusal as the error's kind and version.
    fn outcome(result: Result<Vec<Planned<'_>>>) -> String {
        match result {
            Ok(steps) if steps.is_empty() => "nothing".to_owned(),
            Ok(steps) => steps
                .iter()
                .map(|s| format!("{} {}", s.direction, s.migration.version()))
                .collect::<Vec<_>>()
                .join(", "),
            Err(Error::Modified { version, .. }) => format!("modified {version}"),
            Err(Error::Renamed { version, .. }) => format!("renamed {version}"),
            Err(Error::UnknownApplied { versions }) => {
                format!("unknown {:?}", versions.iter().map(|v| v.0).collect::<Vec<_>>())
            }
            Err(Error::OutOfOrder {
                version,
                latest_applied,
                ..
            }) => {
                format!("out of order {version} < {latest_applied}")
            }
            Err(Error::Irreversible { version, .. }) => format!("irreversible {version}"),
            Err(Error::UnknownRollback { version, .. }) => format!("unknown rollback {version}"),
            Err(other) => format!("other: {other}"),
        }
    }

    const NONE: Policy = Policy {
        allow_modified: false,
        allow_unknown: false,
        allow_out_of_order: false,
        contract: false,
    };

    /// Name, history, policy, target, expected outcome.
    type Case = (&'static str, Vec<Applied>, Policy, Option<u64>, &'static str);

    #[test]
    fn plans_and_refusals() {
        let modified = {
            let mut h = history(&[1, 2]);
            h[1].checksum = Checksum::of("something else").to_string();
            h
        };
        let renamed = {
            let mut h = history(&[1, 2]);
            h[0].name = "old_name".to_owned();
            h
        };
        let all = Policy {
            allow_modified: true,
            allow_unknown: true,
            allow_out_of_order: true,
            contract: false,
        };
        let out_of_order = Policy {
            allow_out_of_order: true,
            ..NONE
        };
        let unknown = Policy {
            allow_unknown: true,
            ..NONE
        };
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("nothing applied", vec![], NONE, None, "up 1, up 2, up 3, up 4"),
            ("all applied", history(&[1, 2, 3, 4]), NONE, None, "nothing"),
            ("some applied", history(&[1, 2]), NONE, None, "up 3, up 4"),
            ("modified", modified.clone(), NONE, None, "modified 2"),
            ("modified, allowed", modified, all, None, "up 3, up 4"),
            ("renamed", renamed.clone(), NONE, None, "renamed 1"),
            ("renamed, allowed", renamed, all, None, "up 3, up 4"),
            ("unknown applied", history(&[1, 2, 3, 4, 5, 6]), NONE, None, "unknown [5, 6]"),
            ("unknown applied, allowed", history(&[1, 2, 3, 4, 5]), unknown, None, "nothing"),
            ("out of order", history(&[1, 3]), NONE, None, "out of order 2 < 3"),
            ("out of order, allowed", history(&[1, 3]), out_of_order, None, "up 2, up 4"),
            ("up to a target", vec![], NONE, Some(2), "up 1, up 2"),
            ("down, then the pending below", history(&[1, 4]), NONE, Some(3), "down 4, up 2, up 3"),
            ("down to a target", history(&[1, 2, 3, 4]), NONE, Some(3), "down 4"),
            ("down past a missing down", history(&[1, 2, 3, 4]), NONE, Some(2), "irreversible 3"),
            ("down of an unknown version", history(&[1, 2, 3, 4, 5]), unknown, Some(4), "unknown rollback 5"),
            ("target 0", history(&[1, 2]), NONE, Some(0), "down 2, down 1"),
            ("target 0, nothing applied", vec![], NONE, Some(0), "nothing"),
            ("down and up", history(&[1, 2, 4]), out_of_order, Some(3), "down 4, up 3"),
        ];
        let migrations = code();
        for (name, history, policy, target, expected) in cases {
            let got = outcome(plan(&migrations, &history, policy, target));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn contracts_are_held_unless_asked_for() {
        // 2 expands, 3 is its contract, 4 comes after.
        let mut migrations = code();
        migrations[1] = migration(2, true).with_phase(crate::Phase::Expand);
        migrations[2] = migration(3, false)
            .with_phase(crate::Phase::Contract)
            .with_contract_of(2);
        let contract = Policy { contract: true, ..NONE };
        // Name, history, policy, target, expected plan, expected held version.
        type HeldCase = (
            &'static str,
            Vec<Applied>,
            Policy,
            Option<u64>,
            &'static str,
            Option<u64>,
        );
        #[rustfmt::skip]
        let cases: Vec<HeldCase> = vec![
            ("held", vec![], NONE, None, "up 1, up 2", Some(3)),
            ("held, nothing before it", history(&[1, 2]), NONE, None, "nothing", Some(3)),
            ("asked for", history(&[1, 2]), contract, None, "up 3, up 4", None),
            ("asked for from scratch", vec![], contract, None, "up 1, up 2, up 3, up 4", None),
            ("target below the contract", vec![], NONE, Some(2), "up 1, up 2", None),
            ("target past the contract", vec![], NONE, Some(4), "up 1, up 2", Some(3)),
            ("applied contract", history(&[1, 2, 3]), NONE, None, "up 4", None),
            ("down past a contract", history(&[1, 2, 3, 4]), NONE, Some(1), "irreversible 3", None),
        ];
        for (name, history, policy, target, expected, expected_held) in cases {
            assert_eq!(outcome(plan(&migrations, &history, policy, target)), expected, "{name}");
            let got = held(&migrations, &history, policy, target).map(Migration::version);
            assert_eq!(got, expected_held, "{name}");
        }
    }

    #[test]
    fn down_of_an_irreversible_refuses_before_any_step() {
        // 4 has a down, 3 has none: nothing is planned, not even 4's down.
        let migrations = code();
        let result = plan(&migrations, &history(&[1, 2, 3, 4]), NONE, Some(1));
        assert_eq!(outcome(result), "irreversible 3");
    }

    #[test]
    fn a_set_must_ascend() {
        assert!(check_set(&code()).is_ok());
        assert!(check_set(&[]).is_ok());
        let twice = [migration(2, false), migration(2, false)];
        assert!(matches!(check_set(&twice), Err(Error::InvalidSet { .. })));
        let descending = [migration(3, false), migration(1, false)];
        assert!(matches!(check_set(&descending), Err(Error::InvalidSet { .. })));
    }

    #[test]
    fn steps_name_their_script() {
        let migrations = code();
        assert_eq!(Planned::up(&migrations[2]).script(), Some(migrations[2].up()));
        assert_eq!(Planned::down(&migrations[2]).script(), None);
        assert_eq!(Planned::down(&migrations[0]).script(), migrations[0].down());
        assert!(matches(&migrations[0], &row(1)));
        assert!(find(&migrations, 5).is_none());
    }
}
