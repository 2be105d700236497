//! The HTTP API over real HTTP against the real binary: every test starts its own
//! `taquilla serve` on port 0 with its own data directory (see `support`).

mod bad_input;
mod concurrency;
mod crash;
mod errors;
mod flow;
mod ops;
mod support;
