//! Every bound and default of the payments crate, in one place (TigerBeetle's `constants.zig`):
//! units last in names, relations checked at compile time, and messages quote these constants
//! rather than retyping them.

// --- Resilience: the deadline -------------------------------------------------------------

/// How long one attempt at a provider call may take before it is abandoned.
pub const DEADLINE_MS_DEFAULT: u64 = 10_000;
pub const DEADLINE_MS_MIN: u64 = 100;
pub const DEADLINE_MS_MAX: u64 = 60_000;

// --- Resilience: retries -------------------------------------------------------------------

/// Retries after the first attempt, at most.
pub const RETRIES_DEFAULT: u32 = 3;
pub const RETRIES_MAX: u32 = 10;
/// The first backoff's upper bound; each retry doubles it, up to the cap. Full jitter: the
/// actual wait is uniform in `0..=bound`.
pub const BACKOFF_BASE_MS_DEFAULT: u64 = 100;
pub const BACKOFF_CAP_MS_DEFAULT: u64 = 5_000;
pub const BACKOFF_CAP_MS_MAX: u64 = 60_000;
/// Retries may add at most this share of the calls made over the budget's window…
pub const RETRY_BUDGET_PERCENT_DEFAULT: u32 = 10;
pub const RETRY_BUDGET_PERCENT_MAX: u32 = 100;
/// …plus this many per second whatever the traffic, so a quiet provider can still be retried.
pub const RETRY_BUDGET_MIN_PER_SEC_DEFAULT: u32 = 1;
/// The window over which calls and retries are counted (tower's `TpsBudget` accepts 1–60 s).
pub const RETRY_BUDGET_WINDOW_SECS_DEFAULT: u64 = 10;
pub const RETRY_BUDGET_WINDOW_SECS_MIN: u64 = 1;
pub const RETRY_BUDGET_WINDOW_SECS_MAX: u64 = 60;

// --- Resilience: the circuit breaker -------------------------------------------------------

/// The sliding window over which the breaker counts attempts and failures…
pub const BREAKER_WINDOW_SECS_DEFAULT: u64 = 30;
pub const BREAKER_WINDOW_SECS_MAX: u64 = 600;
/// …split into this many buckets (the window slides one bucket at a time).
pub const BREAKER_WINDOW_BUCKETS: usize = 10;
/// Failures within the window that open the breaker, whatever the traffic.
pub const BREAKER_FAILURES_DEFAULT: u32 = 20;
/// A failure share within the window that opens the breaker…
pub const BREAKER_FAILURE_RATE_PERCENT_DEFAULT: u32 = 50;
/// …once at least this many attempts were made in the window.
pub const BREAKER_CALLS_MIN_DEFAULT: u32 = 10;
/// How long an open breaker answers `Unavailable` before letting one probe through.
pub const BREAKER_COOL_DOWN_MS_DEFAULT: u64 = 30_000;
pub const BREAKER_COOL_DOWN_MS_MIN: u64 = 100;
pub const BREAKER_COOL_DOWN_MS_MAX: u64 = 600_000;

// --- The in-memory providers (test, simulated) ---------------------------------------------

/// Payments the in-memory ledger keeps at most; past it, `Authorise` is refused.
pub const LEDGER_INTENTS_MAX: usize = 2_000_000;
/// Idempotency keys it remembers at most (a payment takes one to four: authorise, capture or
/// void, refunds); past it, new keyed calls are refused.
pub const LEDGER_KEYS_MAX: usize = 4 * LEDGER_INTENTS_MAX;

/// The simulated provider's latency, at most.
pub const SIMULATED_LATENCY_MS_MAX: u64 = 60_000;
/// How long a simulated timeout hangs before answering `Unknown`: longer than any deadline,
/// so with the resilience stack in front the deadline is what ends it.
pub const SIMULATED_HANG_MS: u64 = 2 * DEADLINE_MS_MAX;

// --- Stripe --------------------------------------------------------------------------------

pub const STRIPE_API_BASE_DEFAULT: &str = "https://api.stripe.com";
/// The Stripe API version every call asks for (the PaymentIntent and Refund fields read here
/// are the same in every version since; webhooks come in the endpoint's own version, so
/// register the endpoint with this one).
pub const STRIPE_API_VERSION: &str = "2024-06-20";
/// Establishing a connection, at most; a connect failure is `Transient` (nothing was sent).
pub const STRIPE_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// The largest response body read from Stripe (a PaymentIntent is a few KiB).
pub const STRIPE_RESPONSE_BYTES_MAX: usize = 1 << 20;
/// Stripe's own limit on an `Idempotency-Key`.
pub const STRIPE_IDEMPOTENCY_KEY_BYTES_MAX: usize = 255;
/// A provider id (`pi_…`) we put in a URL path, at most.
pub const STRIPE_ID_BYTES_MAX: usize = 255;

/// A webhook's `t=` may differ from our clock by this much either way (Stripe's libraries'
/// default).
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;
/// Webhook secrets accepted at once (the current one and those being rolled).
pub const WEBHOOK_SECRETS_MAX: usize = 4;
/// A `Stripe-Signature` header longer than this is malformed.
pub const WEBHOOK_HEADER_BYTES_MAX: usize = 4_096;
/// `v1=` signatures looked at in one header, at most (one per active secret at Stripe).
pub const WEBHOOK_SIGNATURES_MAX: usize = 8;

// Relations.
const _: () = assert!(DEADLINE_MS_MIN <= DEADLINE_MS_DEFAULT && DEADLINE_MS_DEFAULT <= DEADLINE_MS_MAX);
const _: () = assert!(RETRIES_DEFAULT <= RETRIES_MAX);
const _: () = assert!(BACKOFF_BASE_MS_DEFAULT > 0);
const _: () = assert!(BACKOFF_BASE_MS_DEFAULT <= BACKOFF_CAP_MS_DEFAULT);
const _: () = assert!(BACKOFF_CAP_MS_DEFAULT <= BACKOFF_CAP_MS_MAX);
const _: () = assert!(RETRY_BUDGET_PERCENT_DEFAULT <= RETRY_BUDGET_PERCENT_MAX);
const _: () = assert!(RETRY_BUDGET_WINDOW_SECS_MIN <= RETRY_BUDGET_WINDOW_SECS_DEFAULT);
const _: () = assert!(RETRY_BUDGET_WINDOW_SECS_DEFAULT <= RETRY_BUDGET_WINDOW_SECS_MAX);
const _: () = assert!(BREAKER_FAILURE_RATE_PERCENT_DEFAULT > 0 && BREAKER_FAILURE_RATE_PERCENT_DEFAULT <= 100);
const _: () = assert!(BREAKER_FAILURES_DEFAULT > 0 && BREAKER_CALLS_MIN_DEFAULT > 0);
const _: () = assert!(BREAKER_WINDOW_SECS_DEFAULT <= BREAKER_WINDOW_SECS_MAX);
// A bucket is at least a second wide at the default window.
const _: () = assert!(BREAKER_WINDOW_SECS_DEFAULT >= BREAKER_WINDOW_BUCKETS as u64);
const _: () = assert!(
    BREAKER_COOL_DOWN_MS_MIN <= BREAKER_COOL_DOWN_MS_DEFAULT
        && BREAKER_COOL_DOWN_MS_DEFAULT <= BREAKER_COOL_DOWN_MS_MAX
);
// An attempt's deadline ends before the breaker would have half-opened again, so a probe
// cannot outlive the cool-down that follows its failure.
const _: () = assert!(DEADLINE_MS_DEFAULT <= BREAKER_COOL_DOWN_MS_DEFAULT);
const _: () = assert!(SIMULATED_HANG_MS > DEADLINE_MS_MAX);
const _: () = assert!(SIMULATED_LATENCY_MS_MAX <= DEADLINE_MS_MAX);
const _: () = assert!(STRIPE_CONNECT_TIMEOUT_MS < DEADLINE_MS_DEFAULT);
const _: () = assert!(STRIPE_IDEMPOTENCY_KEY_BYTES_MAX == crate::provider::IDEMPOTENCY_KEY_MAX_BYTES);
const _: () = assert!(WEBHOOK_SECRETS_MAX <= WEBHOOK_SIGNATURES_MAX);
const _: () = assert!(LEDGER_KEYS_MAX >= LEDGER_INTENTS_MAX);
