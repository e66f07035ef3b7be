//! End-to-end tests: one test binary, a module per area.

mod adopt;
mod backends;
mod backfill;
mod build;
mod cache;
mod cli;
mod database;
#[cfg(feature = "diesel")]
mod diesel_tool;
mod downgrade;
mod drift;
mod import;
mod lint;
mod pg_adopt;
mod pg_async;
mod pg_corpus;
mod pg_drift;
mod pg_drift_cli;
mod pg_team;
mod phases;
mod postgres;
mod properties;
mod readme;
mod recipes;
mod reliability;
mod renumber;
mod repair;
mod runtime;
#[cfg(feature = "sqlx")]
mod sqlx_tool;
mod squash;
mod team;
mod testdb;
mod zero_downtime;
