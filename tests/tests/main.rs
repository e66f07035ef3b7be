//! End-to-end tests: one test binary, a module per area.

mod build;
mod cli;
mod database;
mod drift;
mod pg_async;
mod pg_corpus;
mod postgres;
mod properties;
mod readme;
mod reliability;
mod renumber;
mod runtime;
