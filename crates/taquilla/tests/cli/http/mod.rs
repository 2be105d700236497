//! What of the HTTP server needs a real process: SIGKILL (`crash`, and `payments` mid-saga against a
//! fake Stripe), signals, exit codes and restarts of the binary (`lifecycle`), and the key
//! commands changing a running server's keys (`keys`). Every test starts its own
//! `taquilla serve` on port 0 with its own data directory (see `support`). The API's contract is tested in
//! process, beside the API, in `crates/api/tests/api`.

mod crash;
mod disk;
mod keys;
mod lifecycle;
mod payments;
mod room_crash;
mod support;
