//! Tests of the event log crate, in one binary to keep link time down: the shared conformance
//! suite run against each implementation, then file-log specifics (recovery, corruption,
//! locking), snapshots, cursors and property tests of the frame format.

mod conformance;
mod cursor;
mod file;
mod fsutil;
mod props;
mod snapshot;
mod util;
