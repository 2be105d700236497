//! Limits of the HTTP layer, in one place. Units last in names. The domain's limits (names,
//! quantities, items per hold…) are in `taquilla_domain::limits`, the engine's (queues,
//! batches, sales) in `taquilla_engine::limits`.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::rate_limit::Bucket;

const fn bucket(per_sec: u32, burst: u32) -> Bucket {
    match (NonZeroU32::new(per_sec), NonZeroU32::new(burst)) {
        (Some(per_sec), Some(burst)) => Bucket { per_sec, burst },
        _ => panic!("a bucket has a rate and a burst"),
    }
}

/// Request body size when the settings name none.
pub const BODY_LIMIT_BYTES_DEFAULT: usize = 16 * 1024;
/// Smallest body limit a server may be configured with: room for any valid command.
pub const BODY_LIMIT_BYTES_MIN: usize = 256;
/// Largest body limit a server may be configured with.
pub const BODY_LIMIT_BYTES_MAX: usize = 16 << 20;
/// Longest a request may take before `503`; the engine bounds its own waits, this is the last line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest bearer token (or `Authorization` header value after `Bearer `) looked at.
pub const TOKEN_MAX_BYTES: usize = 512;
/// Shortest admin token and buyer secret a server accepts.
pub const SECRET_MIN_BYTES: usize = 16;
/// Buyer token lifetime when `POST /v1/admin/buyer-tokens` names none.
pub const BUYER_TOKEN_TTL_SECS_DEFAULT: u64 = 86_400;
pub const BUYER_TOKEN_TTL_SECS_MIN: u64 = 60;
pub const BUYER_TOKEN_TTL_SECS_MAX: u64 = 30 * 86_400;
/// Longest `X-Correlation-Id` taken from a request (the log stores at most this much).
pub const CORRELATION_ID_MAX_BYTES: usize = 64;
/// Feed records one request returns when it sets no `limit`, and at most.
pub const FEED_LIMIT_DEFAULT: usize = 100;
pub const FEED_LIMIT_MAX: usize = 1000;
/// Orders one `GET /v1/admin/orders` page returns when it sets no `limit`, and at most.
pub const ORDERS_LIMIT_DEFAULT: usize = 50;
pub const ORDERS_LIMIT_MAX: usize = 200;
/// Orders one search request looks at, at most (filters other than a ticket code have no
/// index): a page's cost is bounded whatever the sale's size; the cursor goes on from there.
pub const ORDERS_SCAN_MAX: usize = 16_384;
/// Orders looked at under one read-lock section, so the writer waits for a searching reader
/// well under a millisecond (measured 20 ns an order on a quiet machine, 0.6 µs with every
/// core busy with builds; docs/boxoffice.md).
pub const ORDERS_SCAN_CHUNK: usize = 1_024;
/// An attendee export goes in chunks, each copied under one read-lock section, rendered after
/// it and sent before the next, so its memory is one chunk whatever the sale's size: a chunk
/// ends after the order that reaches `EXPORT_CHUNK_ROWS` tickets, or after
/// `EXPORT_CHUNK_ORDERS` orders looked at (most of them may have no tickets).
pub const EXPORT_CHUNK_ROWS: usize = 1_024;
pub const EXPORT_CHUNK_ORDERS: usize = 4_096;
/// Seconds a client should wait before retrying after `overloaded` / `unavailable`.
pub const RETRY_AFTER_SECS: u32 = 1;
/// Free bytes on the data directory's file system below which a warning is logged, by
/// default: a few of the log's 64 MiB segments.
pub const DISK_FREE_WARN_BYTES_DEFAULT: u64 = 1 << 30;
/// How often the free space of the data directory is looked at for that warning.
pub const DISK_FREE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest `Prefer: wait` honoured.
pub const PREFER_WAIT_MAX: Duration = Duration::from_secs(10);
/// How long a payment request waits, without `Prefer: wait`, for the attempt to reach a state
/// the buyer can act on: paid or ended (`test`, `simulated`), created with its client secret
/// (`stripe`).
pub const PAY_WAIT_DEFAULT: Duration = Duration::from_secs(5);
/// How often a waiting payment request looks at its order again without being woken: the
/// saga wakes it when it reports about the order; this catches what moves an order without
/// the saga (its deadline, a cancel meanwhile).
pub const PAY_RECHECK: Duration = Duration::from_millis(100);
/// Stripe event ids remembered to answer a redelivered webhook without work.
/// Largest webhook body taken, whatever `body_limit_bytes` says for the API's own requests (a
/// provider's event is a few KiB; its size is not ours to choose).
pub const WEBHOOK_BODY_BYTES_MAX: usize = 256 * 1024;
pub const WEBHOOK_EVENTS_REMEMBERED: usize = 100_000;
/// Admin API keys not revoked, at most; creating another answers `422 too_many_keys`.
pub const API_KEYS_ACTIVE_MAX: usize = 100;
/// Revoked API keys kept in the keys file for listing; older ones are dropped (their ids are
/// 64 random bits, never reissued in practice, and refused as unknown).
pub const API_KEYS_REVOKED_KEPT: usize = 100;
/// Buyer signing keys besides key 0 not retired, at most (each is one HMAC state in memory
/// and a linear search on every buyer request).
pub const BUYER_KEYS_ACTIVE_MAX: usize = 16;
/// Retired buyer keys kept in the keys file for listing.
pub const BUYER_KEYS_RETIRED_KEPT: usize = 64;
/// Longest key id in a buyer token (a `u32` in decimal).
pub const BUYER_KID_MAX_DIGITS: usize = 10;
/// How often the server re-reads the keys file in any case (a change by the CLI is seen at
/// once by the next admin request; see `keys`).
pub const KEYS_POLL: Duration = Duration::from_secs(1);
/// Rate limits when the settings name none: a buyer's whole purchase (page, hold, checkout,
/// pay, a few polls) fits in the burst, and a person never keeps up 10 requests a second; a
/// hold/release loop does. An address may be a NAT with many buyers behind it: 10× wider.
pub const RATE_LIMIT_BUYER_DEFAULT: Bucket = bucket(10, 30);
pub const RATE_LIMIT_ADDRESS_DEFAULT: Bucket = bucket(200, 1000);
/// Largest rate (per second) and burst a limit may be configured with.
pub const RATE_LIMIT_MAX: u32 = 1_000_000;
/// Keys (buyers; addresses) each rate-limit table tracks at most, when the settings name none
/// (about 64 bytes each), and the bounds of the setting.
pub const RATE_LIMIT_KEYS_MAX_DEFAULT: usize = 100_000;
pub const RATE_LIMIT_KEYS_MAX_MIN: usize = 1_024;
pub const RATE_LIMIT_KEYS_MAX_MAX: usize = 10_000_000;
/// Open connections at most when the settings name none; beyond it new connections wait in
/// the kernel's accept backlog. The bounds of the setting.
pub const MAX_CONNECTIONS_DEFAULT: usize = 10_000;
pub const MAX_CONNECTIONS_MAX: usize = 1_000_000;
/// File descriptors kept free beyond the connections (the log, snapshots, payment clients).
pub const FILES_RESERVED: usize = 1_024;
/// Time for a request's head (request line and headers) from its first byte, when the settings
/// name none (slowloris), and the bounds of the setting.
pub const HEADER_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Time a connection may sit with no request (before its first, or after an answer) when the
/// settings name none, and the bounds of the setting.
pub const IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
pub const CONNECTION_TIMEOUT_MIN: Duration = Duration::from_secs(1);
pub const CONNECTION_TIMEOUT_MAX: Duration = Duration::from_secs(3_600);
/// Browser origins a server may allow (CORS), at most.
pub const CORS_ORIGINS_MAX: usize = 64;
/// How long a browser may cache a CORS preflight answer.
pub const CORS_MAX_AGE: Duration = Duration::from_secs(600);
/// HTTP worker threads a server may be configured with, at most.
pub const WORKER_THREADS_MAX: usize = 256;
/// Longest a write to a connection may wait for the client to drain its socket before the
/// connection is closed (a stalled reader, e.g. an event stream nobody reads), when the
/// settings name none.
pub const WRITE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Live-push subscribers (`GET /v1/events/{id}/stream`) at once, in total and per sale, when
/// the settings name none: each holds a connection, so together they stay well under
/// `MAX_CONNECTIONS_DEFAULT`, leaving room for the buyers who buy. The bound of both settings.
pub const PUSH_SUBSCRIBERS_MAX_DEFAULT: usize = 5_000;
pub const PUSH_SUBSCRIBERS_PER_SALE_MAX_DEFAULT: usize = 5_000;
pub const PUSH_SUBSCRIBERS_MAX_MAX: usize = MAX_CONNECTIONS_MAX;
/// Renders per second of one sale's availability for its subscribers, at most: changes in
/// between are coalesced into the next render (a flash sale changes state thousands of times a
/// second; a page needs a few updates a second). It is also how often a sale with subscribers
/// looks at its version (one atomic read).
pub const PUSH_RENDERS_PER_SEC_MAX: u32 = 10;
/// Updates a sale's channel keeps for subscribers that have not taken them yet; a subscriber
/// further behind is dropped (it reconnects with `Last-Event-ID` and gets the current state).
pub const PUSH_CHANNEL_CAPACITY: usize = 16;
/// A comment on an idle stream this often, so that proxies keep it open.
pub const PUSH_HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting a dropped stream (the SSE `retry:` field).
pub const PUSH_RETRY_MS: u64 = 1_000;

const _: () = assert!(BODY_LIMIT_BYTES_MIN <= BODY_LIMIT_BYTES_DEFAULT);
const _: () = assert!(BODY_LIMIT_BYTES_DEFAULT <= BODY_LIMIT_BYTES_MAX);
const _: () = assert!(BUYER_TOKEN_TTL_SECS_MIN <= BUYER_TOKEN_TTL_SECS_DEFAULT);
const _: () = assert!(BUYER_TOKEN_TTL_SECS_DEFAULT <= BUYER_TOKEN_TTL_SECS_MAX);
const _: () = assert!(FEED_LIMIT_DEFAULT <= FEED_LIMIT_MAX);
const _: () = assert!(ORDERS_LIMIT_DEFAULT <= ORDERS_LIMIT_MAX);
// A page can always be filled within one request's scan, if the orders match.
const _: () = assert!(ORDERS_LIMIT_MAX <= ORDERS_SCAN_CHUNK);
const _: () = assert!(ORDERS_SCAN_CHUNK <= ORDERS_SCAN_MAX);
const _: () = assert!(EXPORT_CHUNK_ORDERS >= 1 && EXPORT_CHUNK_ROWS >= 1);
const _: () = assert!(RATE_LIMIT_KEYS_MAX_MIN <= RATE_LIMIT_KEYS_MAX_DEFAULT);
const _: () = assert!(RATE_LIMIT_KEYS_MAX_DEFAULT <= RATE_LIMIT_KEYS_MAX_MAX);
// The key table bound leaves room for the checks between two looks at its size.
const _: () = assert!(RATE_LIMIT_KEYS_MAX_MIN as u64 > 2 * crate::rate_limit::PRUNE_EVERY);
const _: () = assert!(MAX_CONNECTIONS_DEFAULT <= MAX_CONNECTIONS_MAX);
// Subscribers leave most connections to buyers.
const _: () = assert!(PUSH_SUBSCRIBERS_MAX_DEFAULT <= MAX_CONNECTIONS_DEFAULT / 2);
const _: () = assert!(PUSH_SUBSCRIBERS_PER_SALE_MAX_DEFAULT <= PUSH_SUBSCRIBERS_MAX_DEFAULT);
const _: () = assert!(PUSH_RENDERS_PER_SEC_MAX >= 1 && PUSH_RENDERS_PER_SEC_MAX <= 1_000);
const _: () = assert!(PUSH_CHANNEL_CAPACITY >= 2);
const _: () = assert!(WRITE_TIMEOUT_DEFAULT.as_secs() >= CONNECTION_TIMEOUT_MIN.as_secs());
const _: () = assert!(WRITE_TIMEOUT_DEFAULT.as_secs() <= CONNECTION_TIMEOUT_MAX.as_secs());
const _: () = assert!(HEADER_READ_TIMEOUT_DEFAULT.as_secs() >= CONNECTION_TIMEOUT_MIN.as_secs());
const _: () = assert!(IDLE_TIMEOUT_DEFAULT.as_secs() <= CONNECTION_TIMEOUT_MAX.as_secs());
const _: () = assert!(PAY_WAIT_DEFAULT.as_millis() <= PREFER_WAIT_MAX.as_millis());
// A waiting request must answer before the request timeout turns it into a 503.
const _: () = assert!(PREFER_WAIT_MAX.as_millis() < REQUEST_TIMEOUT.as_millis());
// A correlation id travels into the log's records, which bound it too.
const _: () = assert!(CORRELATION_ID_MAX_BYTES <= taquilla_log::CORRELATION_ID_MAX_BYTES);
