//! Every limit of the domain, in one place (TigerBeetle's `constants.zig`): what a command may
//! ask for, how large a sale may grow, how much one command may do. Units last in names. The
//! relations between limits are asserted when compiling, below; messages quote the constants
//! (see `values.rs` and `decide.rs`), never a retyped number.

/// Text the API takes is bounded in characters (Unicode scalar values), as JSON Schema's
/// `maxLength` counts: a client checks exactly what the server does. At most 4 bytes each.
pub const NAME_MAX_CHARS: usize = 200;
pub const BUYER_ID_MAX_CHARS: usize = 64;
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 64;
pub const PAYMENT_REF_MAX_CHARS: usize = 128;
pub const REASON_MAX_BYTES: usize = 200;
/// A provider's client secret (Stripe's are ~60 bytes).
pub const CLIENT_SECRET_MAX_BYTES: usize = 255;
pub const CORRELATION_ID_MAX_BYTES: usize = 64;
/// Payment attempts one order may make (each a new method or card after a decline).
pub const PAYMENT_ATTEMPTS_MAX: u32 = 8;
/// Refunds one order may have (whole or by ticket).
pub const REFUNDS_MAX: u32 = 64;
/// Longest an offline payment (bank transfer) may keep an order's tickets.
pub const OFFLINE_PAYMENT_TTL_MS_MAX: u64 = 30 * 24 * 3_600_000;
/// Distinct ticket types in one hold.
pub const HOLD_ITEMS_MAX: usize = 16;
/// Tickets of one type in one hold; a ticket type's `max_per_order` is at most this too.
pub const QUANTITY_MAX: u32 = 100;
pub const TICKET_TYPES_MAX: usize = 256;
/// Times one ticket type's price may change (each change is remembered, so that a refund
/// gives back the price paid).
pub const PRICE_CHANGES_MAX: usize = 64;
pub const QUOTAS_MAX: usize = 256;
/// Ticket types one quota may cover.
pub const QUOTA_TYPES_MAX: usize = 64;
/// Tickets one quota may hold.
pub const CAPACITY_MAX: u32 = 100_000_000;
/// Largest price of one ticket, in the currency's minor unit.
pub const PRICE_MINOR_MAX: i64 = 1_000_000_000_000;
pub const HOLD_TTL_MS_MIN: u64 = 1_000;
pub const HOLD_TTL_MS_MAX: u64 = 24 * 3_600_000;
/// The hold TTL a sale gets when its creator names none (the API's default).
pub const HOLD_TTL_MS_DEFAULT: u64 = 15 * 60_000;
/// Ticket codes named in one refund command.
pub const REFUND_CODES_MAX: usize = 1_000;
/// Most deadlines one `ExpireDue` command turns into events, so that one record stays small.
pub const EXPIRE_BATCH_MAX: usize = 1024;
/// Most entries [`crate::SaleState::reserve_for_capacity`] sets aside per table.
pub const RESERVE_ENTRIES_MAX: usize = 1 << 16;
/// How long an idempotency key is remembered, on the engine's clock: a retry within it gets
/// the original answer, one after it is a new command. Stripe and pretix keep keys 24 h.
pub const IDEMPOTENCY_TTL_MS_MIN: u64 = 60_000;
pub const IDEMPOTENCY_TTL_MS_MAX: u64 = 7 * 24 * 3_600_000;
pub const IDEMPOTENCY_TTL_MS_DEFAULT: u64 = 24 * 3_600_000;
/// Expired idempotency keys forgotten per key remembered: forgetting is paid for by new keys,
/// a few at a time, never by a scan (the table drains faster than it fills).
pub const IDEMPOTENCY_PRUNE_PER_KEY: usize = 4;
/// Stale deadline entries (released holds, settled orders) the index may carry beyond its
/// live ones before it is compacted: compaction runs when the index is longer than twice
/// the live holds and waiting orders plus this, so it is amortized O(1) per entry.
pub const DEADLINES_SLACK: usize = 1024;
/// How many times a fresh ticket code is drawn when the one drawn is already taken. With 128
/// random bits a collision never happens; the bound only stops a broken entropy source from
/// looping.
pub const CODE_DRAWS_MAX: usize = 8;

/// Waiting room: the engine's admission tick, at most this often per sale.
pub const ROOM_TICK_MS: u64 = 100;
/// Most buyers one `RoomTick` admits or expires, so that one record stays small.
pub const ROOM_BATCH_MAX: usize = 4096;
/// Most buyers queued in one sale's room (the organiser's `queue_max` is at most this).
/// A queued buyer costs about [`ROOM_BYTES_PER_BUYER_MAX`] bytes of server memory.
pub const ROOM_QUEUE_MAX: u32 = 2_000_000;
/// Distinct buyers one room remembers (queued, admitted, or done); joins beyond it are refused.
pub const ROOM_BUYERS_MAX: usize = 4_000_000;
/// What one queued buyer may cost the server, id included (the memory test checks it).
pub const ROOM_BYTES_PER_BUYER_MAX: usize = 200;
pub const ROOM_ADMIT_PER_SEC_MAX: u32 = 100_000;
pub const ROOM_SESSION_MS_MIN: u64 = 60_000;
pub const ROOM_SESSION_MS_MAX: u64 = 3_600_000;
/// The most no-shows admission plans for, in thousandths: admission may exceed what stock
/// serves by at most 1 / (1 − this).
pub const ROOM_NO_SHOW_MAX_PER_MILLE: u64 = 200;
/// Ended admissions needed before the observed no-show rate counts.
pub const ROOM_NO_SHOW_SAMPLE_MIN: u64 = 20;

// Relations between limits, checked when compiling.
const _: () = {
    assert!(HOLD_TTL_MS_MIN < HOLD_TTL_MS_DEFAULT);
    assert!(HOLD_TTL_MS_DEFAULT < HOLD_TTL_MS_MAX);
    // Timestamps are i64 milliseconds: a deadline `now + ttl` cannot overflow for any sane now.
    assert!(HOLD_TTL_MS_MAX < (i64::MAX as u64) / 2);
    // A hold's tickets, and a paid order's issued tickets, are counted in u32.
    assert!((HOLD_ITEMS_MAX as u64) * (QUANTITY_MAX as u64) <= u32::MAX as u64);
    // A hold's total never saturates: price × quantity × lines fits in i64.
    assert!((PRICE_MINOR_MAX as i128) * (QUANTITY_MAX as i128) * (HOLD_ITEMS_MAX as i128) <= i64::MAX as i128);
    // Per-quota and per-type counters are u32; `held + sold` is at most a capacity.
    assert!((CAPACITY_MAX as u64) * 2 <= u32::MAX as u64);
    assert!(QUOTA_TYPES_MAX <= TICKET_TYPES_MAX);
    // Ticket type and quota ids are u32 indices.
    assert!(TICKET_TYPES_MAX as u64 <= u32::MAX as u64);
    assert!(QUOTAS_MAX as u64 <= u32::MAX as u64);
    // A refund names at least one ticket (refunding all of an order names none).
    assert!(REFUND_CODES_MAX >= 1);
    assert!(EXPIRE_BATCH_MAX >= 1);
    assert!(CODE_DRAWS_MAX >= 1);
    assert!(PAYMENT_ATTEMPTS_MAX >= 1);
    assert!(REFUNDS_MAX >= 1);
    assert!(OFFLINE_PAYMENT_TTL_MS_MAX >= HOLD_TTL_MS_MAX);
    assert!(IDEMPOTENCY_TTL_MS_MIN <= IDEMPOTENCY_TTL_MS_DEFAULT);
    assert!(IDEMPOTENCY_TTL_MS_DEFAULT <= IDEMPOTENCY_TTL_MS_MAX);
    assert!(IDEMPOTENCY_TTL_MS_MAX < (i64::MAX as u64) / 2);
    assert!(IDEMPOTENCY_PRUNE_PER_KEY >= 2);
    assert!(DEADLINES_SLACK >= 1);
    assert!(PRICE_CHANGES_MAX >= 1);
    assert!(OFFLINE_PAYMENT_TTL_MS_MAX < (i64::MAX as u64) / 2);
    assert!(ROOM_QUEUE_MAX as usize <= ROOM_BUYERS_MAX);
    // Queue positions and admission numbers are u32.
    assert!(ROOM_BUYERS_MAX as u64 <= u32::MAX as u64 / 2);
    assert!(ROOM_BATCH_MAX >= 1);
    assert!(ROOM_NO_SHOW_MAX_PER_MILLE < 1000);
    assert!(ROOM_SESSION_MS_MIN <= ROOM_SESSION_MS_MAX);
    assert!(ROOM_ADMIT_PER_SEC_MAX >= 1);
};
