//! Time for the engine. The domain never reads a clock; the shard reads this one once per batch.
//!
//! **Clock steps.** Deadlines (holds, orders) are stored in wall time, but the engine must not
//! jump with the wall clock: an NTP step or a VM resumed after a pause would otherwise expire
//! every hold at once (a step forward) or freeze expiry (a step back). [`PacedClock`], the
//! clock `serve` runs on, is paced by the monotonic clock and follows the wall clock only by
//! slewing: each reading moves it by the monotonic time elapsed, corrected towards the wall
//! clock by at most a tenth of that (`limits::CLOCK_SLEW_DIVISOR`). So engine time never steps and never
//! goes back, runs at 0.9 to 1.1 times real time while it catches up with a step (a 1 h step
//! is absorbed in 10 h), and a hold of TTL `t` lasts between `t / 1.1` and `t / 0.9` of real
//! time whatever the wall clock does. A step beyond `limits::CLOCK_STEP_WARN_MS` is logged once, and the
//! gap is exported as a gauge. At start the engine takes the wall clock as it is.

#[cfg(feature = "test-util")]
use std::sync::atomic::AtomicU64;
#[cfg(feature = "test-util")]
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use taquilla_domain::Timestamp;

use crate::limits::{CLOCK_SLEW_DIVISOR as SLEW_DIVISOR, CLOCK_STEP_WARN_MS as STEP_WARN_MS};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time (milliseconds since the Unix epoch), as the system has it: steps included.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// Time that only goes forward at the rate of real time, whatever the wall clock does.
pub trait Monotonic: Send + Sync + 'static {
    /// Microseconds since some fixed point.
    fn now_us(&self) -> u64;
}

/// The system's monotonic clock (`Instant`).
#[derive(Debug, Clone, Copy)]
pub struct SystemMonotonic(Instant);

impl Default for SystemMonotonic {
    fn default() -> Self {
        SystemMonotonic(Instant::now())
    }
}

impl Monotonic for SystemMonotonic {
    fn now_us(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Engine time: the wall clock, paced by a monotonic one (see the module docs).
pub struct PacedClock {
    wall: Arc<dyn Clock>,
    mono: Arc<dyn Monotonic>,
    pace: Mutex<Pace>,
}

#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Engine time at the last reading, in microseconds since the Unix epoch.
    engine_us: i64,
    /// The monotonic clock at the last reading.
    mono_us: u64,
    /// A step is being absorbed (logged once).
    stepped: bool,
}

impl PacedClock {
    /// The system's wall clock paced by its monotonic clock: what `serve` runs on.
    pub fn system() -> PacedClock {
        PacedClock::new(Arc::new(SystemClock), Arc::new(SystemMonotonic::default()))
    }

    /// Starts at the wall clock's time now.
    pub fn new(wall: Arc<dyn Clock>, mono: Arc<dyn Monotonic>) -> PacedClock {
        let pace = Pace {
            engine_us: wall.now().0.saturating_mul(1000),
            mono_us: mono.now_us(),
            stepped: false,
        };
        PacedClock {
            wall,
            mono,
            pace: Mutex::new(pace),
        }
    }

    /// How far the wall clock is ahead of engine time (negative: behind), in milliseconds.
    pub fn wall_gap_ms(&self) -> i64 {
        let engine_ms = self.now().0;
        self.wall.now().0 - engine_ms
    }
}

impl Clock for PacedClock {
    fn now(&self) -> Timestamp {
        let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
        let mono_us = self.mono.now_us();
        let elapsed_us = i64::try_from(mono_us.saturating_sub(pace.mono_us)).unwrap_or(i64::MAX);
        let paced_us = pace.engine_us.saturating_add(elapsed_us);
        let gap_us = self.wall.now().0.saturating_mul(1000).saturating_sub(paced_us);
        let slew_us = elapsed_us / SLEW_DIVISOR;
        pace.engine_us = paced_us + gap_us.clamp(-slew_us, slew_us);
        pace.mono_us = mono_us;
        let large = gap_us.abs() > STEP_WARN_MS * 1000;
        if large && !pace.stepped {
            tracing::warn!(
                gap_ms = gap_us / 1000,
                "the wall clock stepped; expiry keeps monotonic time and slews towards it by at most 1/{SLEW_DIVISOR}"
            );
        }
        pace.stepped = large;
        metrics::gauge!("taquilla_clock_wall_gap_ms").set((gap_us / 1000) as f64);
        Timestamp(pace.engine_us.div_euclid(1000))
    }
}

/// Time that moves only when told to: deterministic tests of expiry. Test code: compiled only
/// with the `test-util` feature.
#[cfg(feature = "test-util")]
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

#[cfg(feature = "test-util")]
impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.0))
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

#[cfg(feature = "test-util")]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

/// A monotonic clock that moves only when told to (tests of clock steps, with a
/// [`ManualClock`] as the wall clock).
#[cfg(feature = "test-util")]
#[derive(Debug, Default)]
pub struct ManualMonotonic(AtomicU64);

#[cfg(feature = "test-util")]
impl ManualMonotonic {
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms * 1000, Ordering::SeqCst);
    }
}

#[cfg(feature = "test-util")]
impl Monotonic for ManualMonotonic {
    fn now_us(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
