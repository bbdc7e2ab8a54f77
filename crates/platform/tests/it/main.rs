//! platform's integration tests in one test binary (one link instead of one per file); each
//! module's own documentation says what it covers.

mod layout;
mod router;
mod sockets;
