//! data-api's integration tests in one test binary (one link instead of one per file); each
//! module's own documentation says what it covers.

mod abuse;
mod backup;
mod callers;
mod common;
mod crash;
mod faults;
mod format_versions;
mod fuzz_parsers;
mod http_api;
mod import_legacy;
mod orphans;
mod shared_volume;
mod store;
mod traces;
