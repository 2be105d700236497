//! Limits and defaults of the followers. Units last in names.

use std::time::Duration;

/// Provider calls the saga makes at once by default.
pub const SAGA_CONCURRENCY_DEFAULT: usize = 256;
/// At most, whatever the configuration.
pub const SAGA_CONCURRENCY_MAX: usize = 4096;
/// First retry pause of a call that got no answer (it doubles up to the maximum).
pub const SAGA_RETRY_MIN: Duration = Duration::from_millis(200);
pub const SAGA_RETRY_MAX: Duration = Duration::from_secs(60);
/// How long a payment may await its buyer's confirmation before the saga asks the provider.
pub const RECONCILE_AFTER_DEFAULT: Duration = Duration::from_secs(60);
/// Bounds of the setting: often enough to matter, seldom enough not to poll the provider hard.
pub const RECONCILE_AFTER_MIN: Duration = Duration::from_secs(1);
pub const RECONCILE_AFTER_MAX: Duration = Duration::from_secs(3600);
/// How often a follower saves its position at most (and when it stops). After a crash the
/// records of up to this long come again; the followers are idempotent.
pub const CURSOR_COMMIT_EVERY: Duration = Duration::from_secs(1);
/// Longest the scheduler sleeps without work, so that gauges stay fresh.
pub const SAGA_IDLE_MAX: Duration = Duration::from_secs(1);

const _: () = assert!(SAGA_CONCURRENCY_DEFAULT <= SAGA_CONCURRENCY_MAX);
const _: () = assert!(SAGA_RETRY_MIN.as_millis() < SAGA_RETRY_MAX.as_millis());
const _: () = assert!(RECONCILE_AFTER_MIN.as_secs() <= RECONCILE_AFTER_DEFAULT.as_secs());
const _: () = assert!(RECONCILE_AFTER_DEFAULT.as_secs() <= RECONCILE_AFTER_MAX.as_secs());
