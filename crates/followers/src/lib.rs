//! Followers of the event log: workers that read the log from a durable named cursor, do a
//! side effect idempotently, and report its outcome back to the engine as a command. After a
//! crash each resumes from its cursor and from the sales' state; nothing lives only in memory.
//!
//! - [`follower`]: the cursor loop every follower shares.
//! - [`saga`]: the payment saga (authorise, capture, void, refund) and its reconciler.
//! - [`watch`]: requests waiting for an order's payment to move, woken by the saga.

pub mod follower;
pub mod limits;
pub mod saga;
pub mod watch;

#[cfg(test)]
mod test_support;

pub use saga::{Providers, SagaConfig, SagaHandle};
pub use watch::OrderWatch;
