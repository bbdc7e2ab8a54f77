//! backend-api's integration tests in one test binary (one link instead of one per file); each
//! module's own documentation says what it covers.

mod abuse;
mod callers;
mod common;
mod download;
mod fuzz_query;
mod legacy;
mod process;
mod redirects;
mod stalls;
mod tls;
mod traces;
