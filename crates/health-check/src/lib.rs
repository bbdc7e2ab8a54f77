//! health-check (to be built).
