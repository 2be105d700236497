//! Every limit of the engine, in one place (TigerBeetle's `constants.zig`): what one call may
//! carry, how many sales one engine holds, the queues' bounds, and the bounds and defaults of
//! [`crate::EngineConfig`] (checked by [`crate::EngineConfig::validate`]). Units last in
//! names. The relations between them are asserted when compiling, below; messages quote the
//! constants, never a retyped number.

/// Commands one [`crate::Engine::submit_batch`] call may carry.
pub const SUBMIT_BATCH_MAX: usize = 8_192;
/// Sales one engine holds.
pub const SALES_MAX: usize = 100_000;
/// Batches waiting for their fsync before the shard must wait for the flusher.
pub const FLUSH_QUEUE_BATCHES: usize = 16;
/// Longest a shard sleeps without a message or a deadline; bounds how late it notices a
/// deadline scheduled by a clock that jumped.
pub const IDLE_WAIT_MS_MAX: u64 = 250;

/// Engine time follows the wall clock by at most `elapsed / CLOCK_SLEW_DIVISOR` per reading
/// (`clock::PacedClock`): it runs at 0.9 to 1.1 times real time while it absorbs a step.
pub const CLOCK_SLEW_DIVISOR: i64 = 10;
/// A gap between engine and wall time beyond this is a clock step, logged once.
pub const CLOCK_STEP_WARN_MS: i64 = 1_000;

/// Most shard writer threads (`EngineConfig::shards`).
pub const SHARDS_MAX: usize = 64;
pub const SHARDS_DEFAULT: usize = 1;
/// Largest shard queue (`EngineConfig::queue_capacity`, in messages).
pub const QUEUE_CAPACITY_MAX: usize = 10_000_000;
pub const QUEUE_CAPACITY_DEFAULT: usize = 65_536;
/// Largest batch a shard takes before one append and one fsync (`EngineConfig::batch_max`,
/// in commands).
pub const BATCH_COMMANDS_MAX: usize = 65_536;
pub const BATCH_COMMANDS_DEFAULT: usize = 8_192;
/// A sale is snapshotted after this many records since its last snapshot, by default.
pub const SNAPSHOT_EVERY_RECORDS_DEFAULT: u64 = 1_000_000;
/// Log space a shard claims at a time for the records of the batch it decides (more when one
/// record needs more; and at most a 16th of a segment): one claim covers hundreds of holds.
pub const LOG_RESERVE_CHUNK_BYTES: u64 = 64 * 1024;
/// Expiries that found the disk full are tried again after this long (commands try again with
/// every batch; the API's `Retry-After` for `storage_full` says the same, in seconds).
pub const STORAGE_FULL_RETRY_MS: u64 = 1_000;
/// Times one sale's timers may run in one pass of a shard (each run expires at most
/// `EXPIRE_BATCH_MAX` deadlines and admits at most `ROOM_BATCH_MAX` buyers); a sale still due
/// after that is postponed by `STORAGE_FULL_RETRY_MS` rather than starving the shard.
pub const DUE_ROUNDS_MAX: usize = 4_096;
/// A failed snapshot is retried after this long, then after twice as long each time...
pub const SNAPSHOT_RETRY_FIRST_MS: u64 = 1_000;
/// ...at most this many times; then the sale waits for its next normal trigger.
pub const SNAPSHOT_RETRIES_MAX: u32 = 5;

// Relations between limits, checked when compiling.
const _: () = {
    // A submitted batch fits in one shard batch of the largest size.
    assert!(SUBMIT_BATCH_MAX <= BATCH_COMMANDS_MAX);
    assert!(SUBMIT_BATCH_MAX >= 1);
    // The defaults pass `EngineConfig::validate`.
    assert!(SHARDS_DEFAULT >= 1);
    assert!(SHARDS_DEFAULT <= SHARDS_MAX);
    assert!(QUEUE_CAPACITY_DEFAULT >= 1);
    assert!(QUEUE_CAPACITY_DEFAULT <= QUEUE_CAPACITY_MAX);
    assert!(BATCH_COMMANDS_DEFAULT >= 1);
    assert!(BATCH_COMMANDS_DEFAULT <= BATCH_COMMANDS_MAX);
    // Every shard can own a sale.
    assert!(SALES_MAX >= SHARDS_MAX);
    assert!(FLUSH_QUEUE_BATCHES >= 1);
    assert!(IDLE_WAIT_MS_MAX >= 1);
    // Engine time never goes back: a correction is less than the time elapsed.
    assert!(CLOCK_SLEW_DIVISOR > 1);
    assert!(CLOCK_STEP_WARN_MS > 0);
    // The last retry's delay fits in an i64 of milliseconds.
    assert!(SNAPSHOT_RETRIES_MAX >= 1 && SNAPSHOT_RETRIES_MAX < 32);
    assert!(SNAPSHOT_RETRY_FIRST_MS >= 1 && SNAPSHOT_RETRY_FIRST_MS < (1 << 30));
};
