//! log-provider's integration tests in one test binary (one link instead of one per file); each
//! module's own documentation says what it covers.

mod abuse;
mod dev_certs;
mod fuzz_query;
mod http;
mod process;
mod tls;
