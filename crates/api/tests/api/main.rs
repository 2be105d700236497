//! API contract tests: the real application in process, over real HTTP (see `helpers`). One
//! test binary for the crate.

mod bad_input;
mod boxoffice;
mod concurrency;
mod disk;
mod docs;
mod errors;
mod flow;
mod helpers;
mod keys;
mod limits;
mod ops;
mod payments;
mod push;
mod refunds;
mod waiting_room;
