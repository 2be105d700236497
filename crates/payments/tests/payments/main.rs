//! Tests of the payments crate, in one binary to keep link time down: the shared conformance
//! suite run against each provider (Stripe against the fake Stripe on a real HTTP server),
//! then the Stripe adapter's error mapping and the fake's own controls.

mod conformance;
mod resilience;
mod stripe;
