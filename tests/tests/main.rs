//! End-to-end tests: one test binary, a module per area.

mod build;
mod cli;
mod drift;
mod postgres;
mod properties;
mod readme;
mod reliability;
mod renumber;
mod runtime;
mod team;
mod repair;
mod squash;
mod downgrade;
