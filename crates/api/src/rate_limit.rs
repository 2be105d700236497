//! Rate limits: a token bucket per buyer (the id of a verified buyer token) and one per client
//! address, checked before any work is queued to the engine. Over the limit a request answers
//! `429 rate_limited` with `Retry-After` (whole seconds, at least 1).
//!
//! The buckets are governor's keyed GCRA limiters (one atomic word per key in a sharded map).
//! Its key table grows with every new key, so [`Keyed`] bounds it: every [`PRUNE_EVERY`] checks
//! it looks at the table's size, and near [`RateLimitSettings::keys_max`] drops the keys whose
//! bucket is full again (indistinguishable from a fresh key); when more than half are still in
//! use after that (a crowd of live keys), it starts afresh: every client gets a full burst
//! again. That fails open for a moment rather than locking new clients out.
//!
//! Where each applies:
//! - **Buyer**: every route that takes a buyer token ([`crate::auth::Buyer`]), after the token
//!   is verified. Admin routes (admin token), the webhook and the ops routes have no buyer.
//! - **Address**: every route but the ops routes (`/healthz`, `/readyz`, `/metrics`: probes and
//!   scrapers), the organiser's `/v1/admin/*` (its back end mints every buyer's token from
//!   one address; without the admin token these answer 401/403 before any work) and the
//!   payment provider's webhook (Stripe delivers every buyer's events from a few addresses; a
//!   forged one fails its signature before any work). Checked in [`AddressLimitLayer`], a route
//!   layer: after routing, before extractors and handlers. IPv6 addresses count by their /64
//!   (one host usually has a whole /64).

use std::convert::Infallible;
use std::future::Future;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use governor::Quota;
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use metrics::Counter;
use parking_lot::RwLock;
use pin_project_lite::pin_project;
use taquilla_domain::BuyerId;
use tower::{Layer, Service};

use crate::error::{ApiError, Code};
use crate::limits;

/// Checks between two looks at a key table's size: a look costs a pass over the map's shards.
pub const PRUNE_EVERY: u64 = 64;

/// One token bucket: `per_sec` tokens a second, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub per_sec: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Bucket {
    fn quota(self) -> Quota {
        Quota::per_second(self.per_sec).allow_burst(self.burst)
    }
}

/// The rate limits a server runs with; `None` turns a limit off.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub buyer: Option<Bucket>,
    pub address: Option<Bucket>,
    /// Keys each table tracks at most (buyers; addresses).
    pub keys_max: usize,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies); empty: none.
    pub trusted_proxies: Vec<IpAddr>,
    /// What the buckets refill by: monotonic time, or a manual clock in tests.
    pub clock: LimitClock,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            buyer: Some(limits::RATE_LIMIT_BUYER_DEFAULT),
            address: Some(limits::RATE_LIMIT_ADDRESS_DEFAULT),
            keys_max: limits::RATE_LIMIT_KEYS_MAX_DEFAULT,
            trusted_proxies: Vec::new(),
            clock: LimitClock::monotonic(),
        }
    }
}

impl RateLimitSettings {
    /// No limits at all (benchmarks and tests that are not about them).
    pub fn off() -> RateLimitSettings {
        RateLimitSettings {
            buyer: None,
            address: None,
            ..RateLimitSettings::default()
        }
    }
}

/// The buckets' time: monotonic (never the wall clock: a clock step must not refill or
/// freeze every bucket), or moved by hand in tests.
#[derive(Debug, Clone)]
pub struct LimitClock {
    origin: std::time::Instant,
    /// `Some`: manual, this many nanoseconds since the origin.
    manual: Option<Arc<AtomicU64>>,
}

impl LimitClock {
    pub fn monotonic() -> LimitClock {
        LimitClock {
            origin: std::time::Instant::now(),
            manual: None,
        }
    }

    /// A clock that stands still until [`LimitClock::advance`].
    pub fn manual() -> LimitClock {
        LimitClock {
            origin: std::time::Instant::now(),
            manual: Some(Arc::default()),
        }
    }

    /// Moves a manual clock forward (a monotonic one ignores it).
    pub fn advance(&self, d: Duration) {
        if let Some(m) = &self.manual {
            m.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
    }
}

impl governor::clock::Clock for LimitClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match &self.manual {
            Some(m) => Nanos::from(m.load(Ordering::Relaxed)),
            None => Nanos::from(self.origin.elapsed()),
        }
    }
}

type Limiter<K> = governor::RateLimiter<K, DashMapStateStore<K>, LimitClock, NoOpMiddleware<Nanos>>;

/// A keyed limiter whose key table stays within `keys_max` (see the module documentation).
pub struct Keyed<K: Hash + Eq + Clone> {
    limiter: RwLock<Limiter<K>>,
    quota: Quota,
    clock: LimitClock,
    keys_max: usize,
    checks: AtomicU64,
    limited: Counter,
    resets: Counter,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    pub fn new(bucket: Bucket, keys_max: usize, clock: LimitClock, scope: &'static str) -> Keyed<K> {
        assert!(
            keys_max as u64 > 2 * PRUNE_EVERY,
            "keys_max leaves room for the checks between two looks"
        );
        let quota = bucket.quota();
        Keyed {
            limiter: RwLock::new(Limiter::dashmap_with_clock(quota, clock.clone())),
            quota,
            clock,
            keys_max,
            checks: AtomicU64::new(0),
            limited: metrics::counter!("taquilla_rate_limited_total", "scope" => scope),
            resets: metrics::counter!("taquilla_rate_limit_table_resets_total", "scope" => scope),
        }
    }

    /// Takes a token from `key`'s bucket, or says how many whole seconds until one is there.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed).is_multiple_of(PRUNE_EVERY) {
            self.bound();
        }
        let refused = self.limiter.read().check_key(key).err();
        match refused {
            None => Ok(()),
            Some(not_until) => {
                self.limited.increment(1);
                let wait = not_until.wait_time_from(self.clock.now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.limiter.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the table within `keys_max`: at most [`PRUNE_EVERY`] new keys arrive before the
    /// next look, so it acts once fewer than that are left.
    fn bound(&self) {
        let high = self.keys_max - PRUNE_EVERY as usize;
        {
            let limiter = self.limiter.read();
            if limiter.len() < high {
                return;
            }
            limiter.retain_recent();
            if limiter.len() <= self.keys_max / 2 {
                limiter.shrink_to_fit();
                return;
            }
        }
        tracing::warn!(
            keys_max = self.keys_max,
            "rate limit table full of live keys: starting afresh"
        );
        self.resets.increment(1);
        *self.limiter.write() = Limiter::dashmap_with_clock(self.quota, self.clock.clone());
    }
}

/// The server's limiters.
pub struct RateLimits {
    buyers: Option<Keyed<BuyerId>>,
    addresses: Option<Keyed<IpAddr>>,
    trusted_proxies: Vec<IpAddr>,
}

impl RateLimits {
    pub fn new(s: &RateLimitSettings) -> RateLimits {
        RateLimits {
            buyers: s.buyer.map(|b| Keyed::new(b, s.keys_max, s.clock.clone(), "buyer")),
            addresses: s.address.map(|b| Keyed::new(b, s.keys_max, s.clock.clone(), "address")),
            trusted_proxies: s.trusted_proxies.clone(),
        }
    }

    /// Takes a token from the buyer's bucket (`429 rate_limited` when empty).
    pub fn check_buyer(&self, buyer: &BuyerId) -> Result<(), ApiError> {
        match &self.buyers {
            Some(k) => k.check(buyer).map_err(|secs| limited("this buyer", secs)),
            None => Ok(()),
        }
    }

    /// Takes a token from the client address's bucket (`429 rate_limited` when empty).
    pub fn check_address(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.addresses {
            Some(k) => k
                .check(&address_key(self.client(peer.ip(), headers)))
                .map_err(|secs| limited("this client address", secs)),
            None => Ok(()),
        }
    }

    /// Keys tracked: (buyers, addresses).
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.buyers.as_ref().map_or(0, Keyed::len),
            self.addresses.as_ref().map_or(0, Keyed::len),
        )
    }

    /// The client: the peer, or, when the peer is a trusted proxy, the nearest address in
    /// `X-Forwarded-For` that is not one (each proxy appends the address it got the request
    /// from; only those appended by trusted proxies are believed).
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = ip;
            if !self.trusted_proxies.contains(&ip) {
                break;
            }
        }
        client
    }
}

fn limited(whom: &str, secs: u64) -> ApiError {
    ApiError::new(
        Code::RateLimited,
        format!("too many requests from {whom}; retry after the Retry-After delay"),
    )
    .retry_after(secs)
}

/// The key of an address: IPv4 (also when mapped into IPv6) as it is, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Routes outside the address limit (see the module documentation).
pub(crate) fn exempt_from_address_limit(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
        || route.starts_with("/v1/admin/")
        || route.starts_with("/v1/webhooks/")
}

/// The peer of a request's connection, put in its extensions by the server
/// ([`crate::connections`]). Requests without it (called in process) skip the address limit.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Route layer: the address limit.
#[derive(Clone)]
pub struct AddressLimitLayer {
    limits: Arc<RateLimits>,
}

impl AddressLimitLayer {
    pub fn new(limits: Arc<RateLimits>) -> AddressLimitLayer {
        AddressLimitLayer { limits }
    }
}

impl<S> Layer<S> for AddressLimitLayer {
    type Service = AddressLimit<S>;
    fn layer(&self, inner: S) -> AddressLimit<S> {
        AddressLimit {
            inner,
            limits: self.limits.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AddressLimit<S> {
    inner: S,
    limits: Arc<RateLimits>,
}

impl<S> Service<Request> for AddressLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AddressLimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if self.limits.addresses.is_some()
            && let Some(Peer(peer)) = req.extensions().get::<Peer>().copied()
            && !req
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|p| exempt_from_address_limit(p.as_str()))
            && let Err(e) = self.limits.check_address(peer, req.headers())
        {
            return AddressLimitFuture::Refused {
                response: Some(e.into_response()),
            };
        }
        AddressLimitFuture::Admitted {
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    #[project = AddressLimitProj]
    pub enum AddressLimitFuture<F> {
        Admitted { #[pin] inner: F },
        Refused { response: Option<Response> },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for AddressLimitFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AddressLimitProj::Admitted { inner } => inner.poll(cx),
            // Polled again after completion (a caller bug): stay pending rather than panic.
            AddressLimitProj::Refused { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use axum::http::HeaderValue;

    use super::*;

    fn bucket(per_sec: u32, burst: u32) -> Bucket {
        Bucket {
            per_sec: NonZeroU32::new(per_sec).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_refills_at_its_rate() {
        let clock = LimitClock::manual();
        let k = Keyed::new(bucket(2, 3), 1000, clock.clone(), "test");
        for _ in 0..3 {
            assert_eq!(k.check(&1u32), Ok(()));
        }
        // Half a second for the next token: rounded up to a whole second.
        assert_eq!(k.check(&1u32), Err(1));
        assert_eq!(k.check(&2u32), Ok(()), "another key has its own bucket");
        clock.advance(Duration::from_millis(500));
        assert_eq!(k.check(&1u32), Ok(()));
        assert_eq!(k.check(&1u32), Err(1));
    }

    #[test]
    fn retry_after_is_the_whole_seconds_until_a_token() {
        let clock = LimitClock::manual();
        let k = Keyed::new(bucket(1, 1), 1000, clock.clone(), "test");
        assert_eq!(k.check(&0u8), Ok(()));
        assert_eq!(k.check(&0u8), Err(1));
        clock.advance(Duration::from_millis(999));
        assert_eq!(k.check(&0u8), Err(1), "1 ms left is still a whole second");
        clock.advance(Duration::from_millis(1));
        assert_eq!(k.check(&0u8), Ok(()));
    }

    #[test]
    fn many_distinct_keys_do_not_grow_the_table_past_its_bound() {
        let clock = LimitClock::manual();
        let keys_max = 1000;
        let k = Keyed::new(bucket(10, 2), keys_max, clock.clone(), "test");
        let mut largest = 0;
        for key in 0..20_000u64 {
            assert_eq!(k.check(&key), Ok(()), "a fresh key has a full bucket");
            largest = largest.max(k.len());
            if key % 100 == 99 {
                // Time passes: the earlier keys' buckets are full again, so prunable. The busy
                // key spends its burst each time: it stays live, and pruning keeps it.
                clock.advance(Duration::from_millis(250));
                k.check(&u64::MAX).unwrap();
                k.check(&u64::MAX).unwrap();
                assert!(k.check(&u64::MAX).is_err(), "the busy key stays limited");
            }
        }
        assert!(largest <= keys_max, "{largest} keys tracked, bound {keys_max}");
        assert!(largest > keys_max / 2, "the table did fill: {largest}");
    }

    #[test]
    fn a_table_full_of_live_keys_starts_afresh_within_its_bound() {
        let clock = LimitClock::manual();
        let keys_max = 500;
        let k = Keyed::new(bucket(1, 1), keys_max, clock, "test");
        // Time stands still: every key's bucket stays empty, nothing is prunable.
        for key in 0..5_000u64 {
            assert_eq!(k.check(&key), Ok(()));
            assert!(k.len() <= keys_max, "{} keys tracked", k.len());
        }
    }

    #[test]
    fn addresses_key_ipv6_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let limits = RateLimits::new(&RateLimitSettings {
            trusted_proxies: vec![proxy, "10.0.0.2".parse().unwrap()],
            ..RateLimitSettings::default()
        });
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 198.51.100.9, 10.0.0.2"),
        );
        // Through two trusted proxies: the address the outer one saw, not the forged first.
        assert_eq!(limits.client(proxy, &h), "198.51.100.9".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(
            limits.client(stranger, &h),
            stranger,
            "an untrusted peer's header is ignored"
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(limits.client(proxy, &h), proxy, "an unreadable hop: the proxy itself");
    }
}
