//! The saga's work table: which orders have a provider call to make, when, and what the last
//! tries taught (failures for the backoff, unknown outcomes in a row, the key round). One entry
//! per order at most, so it is bounded by the orders the engine holds; one call per order at a
//! time (an entry in flight is not due again until it finishes).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use taquilla_domain::{OrderId, SaleId};
use tokio::time::Instant;

use super::SagaConfig;

/// One order with saga work.
pub(super) type WorkKey = (SaleId, OrderId);

/// What one look at an order achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// Nothing left to do.
    Done,
    /// A step was reported and changed the order: look again now.
    Again,
    /// Nothing to do before this time (a payment awaiting its buyer).
    WaitUntil(Instant),
    /// Nothing learned (no answer, or an answer that changed nothing): try again after a
    /// backoff; `unknown` when the call's outcome was unknown.
    Retry { unknown: bool },
    /// The call did not happen and its key keeps saying so: after a backoff, under a fresh key.
    RetryFreshKey,
}

/// What a look at an order starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Look {
    pub key: WorkKey,
    /// Unknown outcomes in a row of the call last made.
    pub unknowns: u32,
    /// Which keys the calls use (see `step::next`).
    pub round: u32,
}

#[derive(Debug)]
struct Entry {
    due: Instant,
    failures: u32,
    unknowns: u32,
    round: u32,
    in_flight: bool,
    /// New events arrived while in flight: look again as soon as it is done.
    dirty: bool,
    since: Instant,
}

#[derive(Default)]
pub(super) struct Work {
    queue: BTreeSet<(Instant, WorkKey)>,
    entries: HashMap<WorkKey, Entry>,
}

impl Work {
    pub fn schedule(&mut self, key: WorkKey, due: Instant) {
        let now = Instant::now();
        let entry = self.entries.entry(key).or_insert(Entry {
            due,
            failures: 0,
            unknowns: 0,
            round: 0,
            in_flight: false,
            dirty: false,
            since: now,
        });
        if entry.in_flight {
            entry.dirty = true;
            return;
        }
        self.queue.remove(&(entry.due, key));
        entry.due = entry.due.min(due);
        self.queue.insert((entry.due, key));
    }

    /// Takes a due order, marking it in flight.
    pub fn take_due(&mut self, now: Instant) -> Option<Look> {
        let &(due, key) = self.queue.first()?;
        if due > now {
            return None;
        }
        self.queue.pop_first();
        let e = self.entries.get_mut(&key)?;
        e.in_flight = true;
        e.dirty = false;
        Some(Look {
            key,
            unknowns: e.unknowns,
            round: e.round,
        })
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.queue.first().map(|(due, _)| *due)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// When the oldest entry was first scheduled.
    pub fn oldest(&self) -> Option<Instant> {
        self.entries.values().map(|e| e.since).min()
    }

    pub fn finish(&mut self, key: WorkKey, progress: Progress, config: &SagaConfig) {
        let now = Instant::now();
        let Some(e) = self.entries.get_mut(&key) else {
            return;
        };
        debug_assert!(e.in_flight, "finishing an order that was not in flight");
        e.in_flight = false;
        let due = match progress {
            Progress::Done if !e.dirty => {
                self.entries.remove(&key);
                return;
            }
            Progress::Done | Progress::Again => {
                (e.failures, e.unknowns) = (0, 0);
                now
            }
            Progress::WaitUntil(t) => t,
            Progress::Retry { unknown } => {
                e.failures = e.failures.saturating_add(1);
                e.unknowns = if unknown { e.unknowns.saturating_add(1) } else { 0 };
                now + backoff(config, e.failures, key)
            }
            Progress::RetryFreshKey => {
                e.failures = e.failures.saturating_add(1);
                e.unknowns = 0;
                e.round = e.round.saturating_add(1);
                now + backoff(config, e.failures, key)
            }
        };
        e.due = if e.dirty { now } else { due };
        self.queue.insert((e.due, key));
    }
}

/// Exponential backoff with full jitter, derived from the key and the failure count (no
/// shared random state, yet spread: orders failing together do not retry together).
pub(super) fn backoff(config: &SagaConfig, failures: u32, key: WorkKey) -> Duration {
    let cap = config
        .retry_min
        .saturating_mul(1u32 << failures.min(16))
        .min(config.retry_max);
    let mut x = key.0.0 ^ key.1.0.rotate_left(32) ^ u64::from(failures).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let fraction = (x % 1_000) as u32;
    (cap * fraction / 1_000).max(config.retry_min / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: WorkKey = (SaleId(1), OrderId(7));

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let config = SagaConfig::default();
        for failures in 1..20 {
            let b = backoff(&config, failures, KEY);
            assert!(b <= config.retry_max, "{failures}: {b:?}");
            assert!(b >= config.retry_min / 2, "{failures}: {b:?}");
        }
        let spread: BTreeSet<Duration> = (1..50).map(|o| backoff(&config, 10, (SaleId(1), OrderId(o)))).collect();
        assert!(spread.len() > 40, "orders failing together retry apart");
    }

    #[tokio::test(start_paused = true)]
    async fn one_look_at_a_time_and_what_the_last_ones_taught() {
        let config = SagaConfig::default();
        let mut work = Work::default();
        work.schedule(KEY, Instant::now());
        let look = work.take_due(Instant::now()).expect("due");
        assert_eq!((look.unknowns, look.round), (0, 0));
        // New events while in flight: not due twice, but at once when it finishes.
        work.schedule(KEY, Instant::now());
        assert_eq!(work.take_due(Instant::now()), None, "in flight");
        work.finish(KEY, Progress::Retry { unknown: true }, &config);
        let look = work.take_due(Instant::now()).expect("dirty: due at once");
        assert_eq!(look.unknowns, 1);
        // Unknowns count in a row; a fresh key resets them and moves the round.
        work.finish(KEY, Progress::Retry { unknown: true }, &config);
        assert_eq!(work.take_due(Instant::now()), None, "backing off");
        tokio::time::advance(config.retry_max).await;
        assert_eq!(work.take_due(Instant::now()).map(|l| l.unknowns), Some(2));
        work.finish(KEY, Progress::RetryFreshKey, &config);
        tokio::time::advance(config.retry_max).await;
        let look = work.take_due(Instant::now()).expect("due");
        assert_eq!((look.unknowns, look.round), (0, 1));
        // Done with nothing new: the entry goes.
        work.finish(KEY, Progress::Done, &config);
        assert_eq!(work.len(), 0);
    }
}
