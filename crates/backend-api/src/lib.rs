//! backend-api (to be built).
