//! End-to-end tests: one test binary, a module per area.

mod build;
mod cache;
mod cli;
mod drift;
mod lint;
mod postgres;
mod properties;
mod readme;
mod reliability;
mod renumber;
mod runtime;
mod testdb;
