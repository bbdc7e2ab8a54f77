//! data-api (to be built).
