//! Tests of the payments crate, in one binary to keep link time down: the resilience layers
//! on paused time.

mod resilience;
