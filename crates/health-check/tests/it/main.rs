//! health-check's integration tests in one test binary (one link instead of one per file); each
//! module's own documentation says what it covers.

mod alerting;
mod cli;
mod common;
mod concurrency;
mod fuzz_parsers;
mod properties;
mod report;
mod rotation;
mod run_loop;
mod serve;
mod traces;
