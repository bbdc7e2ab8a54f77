//! log-provider (to be built).
