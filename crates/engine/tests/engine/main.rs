//! Engine tests: group commit, backpressure, reads during writes, expiry on a manual clock,
//! recovery, fatal log errors. The log here is wrapped to hold a flush open on demand, so
//! "not acknowledged before durable" is tested by construction rather than by timing.

mod support;

mod commit;
mod expiry;
mod recovery;
mod room;
mod snapshots;
