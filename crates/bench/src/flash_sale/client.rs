//! The bench's HTTP client: raw HTTP/1.1 keep-alive connections (one request at a time each),
//! a pool that hands them to buyers, an optional open-loop pacer, and the recorder of what
//! the client saw (latency per operation, status codes, busy time).
//!
//! Raw `hyper::client::conn::http1` connections rather than a pooled client because the bench
//! must control each socket: its source address (to go past one address's ephemeral ports) and
//! that it carries exactly one request at a time (so `--connections` is what the server sees).
//! The client shares a small machine with the server, so it stays lean: no per-request
//! allocation beyond the request itself, one uncontended lock per recording.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// Connections per source address: below the ~28k ephemeral ports Linux gives one address
/// towards one destination, with room for sockets in TIME_WAIT from earlier runs.
pub const CONNECTIONS_PER_SOURCE: usize = 20_000;
/// Longest a response body may be; the largest the bench reads is a feed page.
const BODY_MAX_BYTES: usize = 8 << 20;
/// Reconnection attempts for a connection the server closed.
const RECONNECT_ATTEMPTS: usize = 3;

/// The operations the scenario performs, each with its own latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `GET /v1/events/{id}`: the sale page.
    Read,
    /// `POST /v1/events/{id}/holds`.
    Hold,
    /// `POST /v1/holds/{id}/checkout`.
    Checkout,
    /// `POST /v1/orders/{id}/pay`.
    Pay,
    /// `DELETE /v1/holds/{id}`.
    Release,
    /// `GET /v1/holds/{id}`: a buyer checking that its hold expired.
    HoldStatus,
    /// `POST /v1/orders/{id}/cancel`: a buyer giving up after its payments were declined.
    Cancel,
    /// `GET /v1/orders/{id}`: a buyer polling a payment under way (`--payments simulated`).
    /// A poll, paced by the provider's latency: recorded, but not a request of the selling
    /// rate (see [`Op::is_poll`]).
    OrderStatus,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::Read,
        Op::Hold,
        Op::Checkout,
        Op::Pay,
        Op::Release,
        Op::HoldStatus,
        Op::Cancel,
        Op::OrderStatus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Hold => "hold",
            Op::Checkout => "checkout",
            Op::Pay => "pay",
            Op::Release => "release",
            Op::HoldStatus => "hold_status",
            Op::Cancel => "cancel",
            Op::OrderStatus => "order_status",
        }
    }

    /// A buyer asking whether its payment is done: its latency and status are recorded, but
    /// it is not one of the requests the selling rate counts, nor does it keep the client
    /// busy (the rush and the busy time follow the selling requests alone). The wait it
    /// stands for is the payment provider's, not the server's.
    pub fn is_poll(self) -> bool {
        self == Op::OrderStatus
    }
}

/// `Prefer`, as the pay route reads it (`wait=<seconds>`).
pub static PREFER: header::HeaderName = header::HeaderName::from_static("prefer");

/// Who waits for a connection: buyers already in a purchase go first, so a flash crowd of
/// new arrivals delays new arrivals, not the holds that are about to expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Arrival,
    InPurchase,
}

/// The server: where to connect and what to send as `Host`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
}

impl Target {
    /// Parses `http://HOST:PORT` (an IP address; the bench talks to loopback).
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url
            .strip_prefix("http://")
            .context("the URL must start with http:// (TLS is not supported)")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr: SocketAddr = authority
            .parse()
            .with_context(|| format!("expected http://IP:PORT, got {url}"))?;
        Ok(Target {
            addr,
            host: HeaderValue::from_str(authority)?,
        })
    }
}

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// One keep-alive connection. Its hyper connection future is driven by whichever task sends
/// on it (see [`drive`]), not by a task of its own: one task wake-up per request instead of
/// three, which matters when the client shares a small machine with the server.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    connection: Pin<Box<Connection>>,
    closed: bool,
    source: Option<IpAddr>,
}

/// Polls `fut` to completion while also polling the connection that carries it.
async fn drive<F: Future<Output = anyhow::Result<T>>, T>(
    connection: &mut Pin<Box<Connection>>,
    closed: &mut bool,
    fut: F,
) -> anyhow::Result<T> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if !*closed && let Poll::Ready(_) = connection.as_mut().poll(cx) {
            *closed = true;
        }
        match fut.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending if *closed => Poll::Ready(Err(anyhow::anyhow!("the connection closed"))),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The source address of the `index`-th connection: spread over 127.0.0.x when there are more
/// connections than one address has ports for, and only towards loopback.
pub fn source_for(target: &Target, index: usize, total: usize) -> Option<IpAddr> {
    if total <= CONNECTIONS_PER_SOURCE || !target.addr.ip().is_loopback() {
        return None;
    }
    let n = 1 + index / CONNECTIONS_PER_SOURCE;
    // 127.0.0.1 ..= 127.0.0.254, then 127.0.1.x: 65k addresses cover any --connections.
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, (n / 254) as u8, (n % 254) as u8 + 1)))
}

pub async fn connect(target: &Target, source: Option<IpAddr>) -> anyhow::Result<Conn> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding a client socket to {ip}"))?;
    }
    let stream = socket
        .connect(target.addr)
        .await
        .with_context(|| format!("connecting to {}", target.addr))?;
    // One small request at a time: do not let Nagle hold it back.
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    Ok(Conn {
        sender,
        connection: Box::pin(connection),
        closed: false,
        source,
    })
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    /// `Retry-After` in milliseconds, when the server sent one.
    pub retry_after_ms: Option<u64>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error code and details of an error body, if it is one.
    pub fn error(&self) -> Option<ErrorDetail> {
        if self.ok() {
            return None;
        }
        serde_json::from_slice::<ErrorBody>(&self.body).ok().map(|b| b.error)
    }
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    #[serde(default)]
    pub details: Option<serde_json::Value>,
}

/// Sends one request on `conn` and reads the whole answer.
pub async fn exchange(
    conn: &mut Conn,
    target: &Target,
    method: Method,
    path: &str,
    auth: Option<&HeaderValue>,
    body: Option<Bytes>,
) -> anyhow::Result<Reply> {
    exchange_with(conn, target, method, path, auth, body, &[]).await
}

/// [`exchange`] with more headers (`name`, `value`).
pub async fn exchange_with(
    conn: &mut Conn,
    target: &Target,
    method: Method,
    path: &str,
    auth: Option<&HeaderValue>,
    body: Option<Bytes>,
    headers: &[(&str, &str)],
) -> anyhow::Result<Reply> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, target.host.clone());
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a.clone());
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            b
        }
        None => Bytes::new(),
    };
    let req = req.body(Full::new(body))?;
    let Conn {
        sender,
        connection,
        closed,
        ..
    } = conn;
    drive(connection, closed, async move {
        sender.ready().await?;
        let res = sender.send_request(req).await?;
        let status = res.status().as_u16();
        let retry_after_ms = res
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| secs.saturating_mul(1000));
        let body = http_body_util::Limited::new(res.into_body(), BODY_MAX_BYTES)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading a response body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            body,
            retry_after_ms,
        })
    })
    .await
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    in_purchase: VecDeque<oneshot::Sender<Conn>>,
    arrivals: VecDeque<oneshot::Sender<Conn>>,
}

/// Idle connections and the buyers waiting for one, in two FIFO queues by priority.
#[derive(Default)]
pub struct Pool {
    state: Mutex<PoolState>,
}

impl Pool {
    pub fn new(conns: Vec<Conn>) -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                idle: conns,
                ..PoolState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A panic while holding this lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn acquire(&self, priority: Priority) -> anyhow::Result<Conn> {
        let rx = {
            let mut s = self.lock();
            if let Some(c) = s.idle.pop() {
                return Ok(c);
            }
            let (tx, rx) = oneshot::channel();
            match priority {
                Priority::InPurchase => s.in_purchase.push_back(tx),
                Priority::Arrival => s.arrivals.push_back(tx),
            }
            rx
        };
        rx.await.context("the connection pool closed")
    }

    pub fn release(&self, mut conn: Conn) {
        let mut s = self.lock();
        loop {
            let waiter = s.in_purchase.pop_front().or_else(|| s.arrivals.pop_front());
            match waiter {
                // A waiter that gave up (its future was dropped) hands the connection back.
                Some(tx) => match tx.send(conn) {
                    Ok(()) => return,
                    Err(c) => conn = c,
                },
                None => {
                    s.idle.push(conn);
                    return;
                }
            }
        }
    }

    /// Every idle connection (for the ceiling phase, which drives them directly).
    pub fn take_all(&self) -> Vec<Conn> {
        std::mem::take(&mut self.lock().idle)
    }

    pub fn put_all(&self, conns: Vec<Conn>) {
        for c in conns {
            self.release(c);
        }
    }

    pub fn len_idle(&self) -> usize {
        self.lock().idle.len()
    }
}

/// Open loop: request `k` is due at `start + k / rate`, whether or not earlier answers came
/// back. A request is sent at its slot or, if its buyer was not ready yet (waiting for its
/// previous answer), when it becomes ready; its latency counts from that intended time, so a
/// server that falls behind is charged for the whole wait (coordinated omission corrected).
pub struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    pub fn new(rate_per_sec: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate_per_sec),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Takes the next slot for a request ready at `ready`; unused slots are not banked, so
    /// an idle spell is not followed by a burst.
    pub fn slot(&self, ready: Instant) -> Instant {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(ready);
        *next = slot + self.interval;
        slot
    }

    /// How far ahead slots are already taken.
    pub fn backlog(&self) -> Duration {
        let next = *self.next.lock().unwrap_or_else(|e| e.into_inner());
        next.saturating_duration_since(Instant::now())
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant figures; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// What the client saw, for the report.
pub struct RecState {
    pub latency_us: Vec<Histogram<u64>>,
    pub statuses: BTreeMap<u16, u64>,
    pub codes: BTreeMap<String, u64>,
    pub transport_errors: u64,
    /// Requests of the selling rate (every request but the polls).
    pub requests: u64,
    /// Polls ([`Op::is_poll`]): recorded apart, not in `requests`, the busy time or the rush.
    pub polls: u64,
    in_flight: u64,
    busy_since: Option<Instant>,
    /// Time with at least one request in flight.
    pub busy: Duration,
    pub first_sent: Option<Instant>,
    pub last_done: Option<Instant>,
    /// The rush: from the first request until the first idle gap of at least [`RUSH_GAP`]
    /// (none in flight). In the closed loop that is the whole crowd's pass through the sale;
    /// what follows are the spells the hold time-to-live paces (expired holds returning
    /// tickets to waiting buyers). Set once such a gap has passed; see [`RecState::rush`].
    rush: Option<Rush>,
    /// When none was last in flight, and the rush as it stood then: the rush, if the next
    /// request comes at least [`RUSH_GAP`] later (or never).
    idle: Option<(Instant, Rush)>,
    /// CPU times when the first request went out.
    cpu_at_first: CpuTimes,
}

/// The shortest idle gap that ends the rush. The client can find none in flight for a moment
/// in mid-rush (a batch of answers handled before the buyers they woke send again); the
/// crowd's pass is over only when every buyer waits on a timer or is done, and the first hold
/// expiry is seconds away.
pub const RUSH_GAP: Duration = Duration::from_millis(50);

impl RecState {
    /// The rush (see the field), once it is over.
    pub fn rush(&self) -> Option<Rush> {
        self.rush
            .or_else(|| self.idle.filter(|_| self.in_flight == 0).map(|(_, r)| r))
    }
}

/// Requests (in all and per operation), time and CPU time of the rush (see
/// [`RecState::rush`]).
#[derive(Debug, Clone, Copy)]
pub struct Rush {
    pub duration: Duration,
    pub requests: u64,
    pub per_op: [u64; Op::ALL.len()],
    /// CPU used from the first request to the end of the rush.
    pub cpu: CpuTimes,
}

/// CPU time the server (when the bench knows its process) and the bench itself have used:
/// so far, or over a phase. Whichever side had its cores busy throughout a phase was its limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub server: Option<Duration>,
    pub client: Option<Duration>,
}

impl CpuTimes {
    /// What was used between `earlier` and `self`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        let diff = |a: Option<Duration>, b: Option<Duration>| a?.checked_sub(b?);
        CpuTimes {
            server: diff(self.server, earlier.server),
            client: diff(self.client, earlier.client),
        }
    }

    /// Two phases together.
    pub fn plus(self, other: CpuTimes) -> CpuTimes {
        let sum = |a: Option<Duration>, b: Option<Duration>| Some(a? + b?);
        CpuTimes {
            server: sum(self.server, other.server),
            client: sum(self.client, other.client),
        }
    }
}

/// Reads the CPU times used so far (a function, so that tests can feed their own clock).
pub type CpuProbe = Box<dyn Fn() -> CpuTimes + Send + Sync>;

pub struct Recorder {
    state: Mutex<RecState>,
    cpu: CpuProbe,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new(Box::new(CpuTimes::default))
    }
}

impl Recorder {
    /// A recorder that reads CPU times with `cpu` when the first request goes out and when
    /// the rush may have ended (none in flight): rarely, not per request.
    pub fn new(cpu: CpuProbe) -> Recorder {
        Recorder {
            cpu,
            state: Mutex::new(RecState {
                latency_us: Op::ALL.iter().map(|_| histogram()).collect(),
                statuses: BTreeMap::new(),
                codes: BTreeMap::new(),
                transport_errors: 0,
                requests: 0,
                polls: 0,
                in_flight: 0,
                busy_since: None,
                busy: Duration::ZERO,
                first_sent: None,
                last_done: None,
                rush: None,
                idle: None,
                cpu_at_first: CpuTimes::default(),
            }),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, RecState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn started(&self, op: Op, at: Instant) {
        if op.is_poll() {
            return;
        }
        let mut s = self.lock();
        if s.in_flight == 0 {
            s.busy_since = Some(at);
            if let Some((since, rush)) = s.idle.take()
                && s.rush.is_none()
                && at.saturating_duration_since(since) >= RUSH_GAP
            {
                s.rush = Some(rush);
            }
        }
        s.in_flight += 1;
        if s.first_sent.is_none() {
            s.first_sent = Some(at);
            s.cpu_at_first = (self.cpu)();
        }
    }

    fn finished(&self, op: Op, intended: Instant, reply: Option<&Reply>, code: Option<&str>) {
        self.finished_at(Instant::now(), op, intended, reply, code);
    }

    fn finished_at(&self, now: Instant, op: Op, intended: Instant, reply: Option<&Reply>, code: Option<&str>) {
        let mut s = self.lock();
        if op.is_poll() {
            s.polls += 1;
        } else {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last_done = Some(now);
            s.requests += 1;
        }
        match reply {
            Some(r) => {
                let us = now.saturating_duration_since(intended).as_micros().max(1) as u64;
                s.latency_us[op as usize].saturating_record(us);
                *s.statuses.entry(r.status).or_insert(0) += 1;
                if let Some(c) = code {
                    if let Some(n) = s.codes.get_mut(c) {
                        *n += 1;
                    } else {
                        s.codes.insert(c.to_string(), 1);
                    }
                }
            }
            None => s.transport_errors += 1,
        }
        if !op.is_poll()
            && s.in_flight == 0
            && let Some(since) = s.busy_since.take()
        {
            s.busy += now.saturating_duration_since(since);
            if s.rush.is_none() {
                let mut per_op = [0; Op::ALL.len()];
                for (n, h) in per_op.iter_mut().zip(&s.latency_us) {
                    *n = h.len();
                }
                let rush = Rush {
                    duration: s.busy,
                    requests: s.requests,
                    per_op,
                    cpu: (self.cpu)().since(s.cpu_at_first),
                };
                s.idle = Some((now, rush));
            }
        }
    }
}

/// The scenario's client: the pool, the pacer (open loop) and the recorder.
pub struct Client {
    pub target: Target,
    pub pool: Pool,
    pub pacer: Option<Pacer>,
    pub recorder: Recorder,
}

/// A request the scenario sends (the fields `exchange` needs).
pub struct Call<'a> {
    pub op: Op,
    pub priority: Priority,
    pub method: Method,
    pub path: &'a str,
    pub auth: Option<&'a HeaderValue>,
    pub body: Option<Bytes>,
    /// A `Prefer` header (the pay route's `wait=<seconds>`).
    pub prefer: Option<&'a HeaderValue>,
    /// Open loop: a slot taken in advance (a new buyer's arrival); else one is taken now.
    pub slot: Option<Instant>,
}

/// The answer with its parsed error (if any).
pub struct Answer {
    pub reply: Reply,
    pub error: Option<ErrorDetail>,
}

impl Client {
    /// Sends one request through the pool and records it. `Err` is a transport failure (the
    /// request may or may not have reached the server).
    pub async fn send(&self, call: Call<'_>) -> anyhow::Result<Answer> {
        let ready = Instant::now();
        // A poll is due when its buyer's wait is over, not at a slot of the schedule.
        let pacer = self.pacer.as_ref().filter(|_| !call.op.is_poll());
        let intended = match pacer {
            Some(p) => {
                let slot = call.slot.unwrap_or_else(|| p.slot(ready));
                tokio::time::sleep_until(slot.into()).await;
                slot
            }
            None => ready,
        };
        let mut conn = self.pool.acquire(call.priority).await?;
        // Closed loop: latency is the server's answer time on an idle connection. Open loop:
        // from the intended send time, so waiting for a connection counts too.
        let intended = if pacer.is_some() { intended } else { Instant::now() };
        self.recorder.started(call.op, intended);
        // Boxed: the exchange (hyper's request and response futures) is the big part of a
        // request's state, and only the buyers holding a connection need it. Tens of
        // thousands waiting for a connection stay small, so their memory is not fresh pages.
        let prefer_header;
        let headers: &[(&str, &str)] = match call.prefer.and_then(|p| p.to_str().ok()) {
            Some(p) => {
                prefer_header = [(PREFER.as_str(), p)];
                &prefer_header
            }
            None => &[],
        };
        let result = Box::pin(exchange_with(
            &mut conn,
            &self.target,
            call.method.clone(),
            call.path,
            call.auth,
            call.body.clone(),
            headers,
        ))
        .await;
        match result {
            Ok(reply) => {
                let error = reply.error();
                self.recorder
                    .finished(call.op, intended, Some(&reply), error.as_ref().map(|e| e.code.as_str()));
                self.pool.release(conn);
                Ok(Answer { reply, error })
            }
            Err(e) => {
                self.recorder.finished(call.op, intended, None, None);
                self.replace(conn).await;
                Err(e)
            }
        }
    }

    /// A connection failed: open a new one in its place (bounded), so the pool keeps its size.
    async fn replace(&self, broken: Conn) {
        let source = broken.source;
        drop(broken);
        for _ in 0..RECONNECT_ATTEMPTS {
            if let Ok(c) = connect(&self.target, source).await {
                self.pool.release(c);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "warning: a connection to {} could not be reopened; the pool is one smaller",
            self.target.addr
        );
    }
}

/// Opens `count` connections, at most `parallel` at a time (so the server's accept backlog
/// does not overflow into SYN retransmits).
pub async fn open_connections(target: &Target, count: usize, parallel: usize) -> anyhow::Result<Vec<Conn>> {
    let mut out = Vec::with_capacity(count);
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0;
    while out.len() < count {
        while next < count && set.len() < parallel {
            let t = target.clone();
            let source = source_for(target, next, count);
            set.spawn(async move { connect(&t, source).await });
            next += 1;
        }
        match set.join_next().await {
            Some(r) => out.push(r.context("a connect task failed")??),
            None => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn ok() -> Reply {
        Reply {
            status: 200,
            body: Bytes::new(),
            retry_after_ms: None,
        }
    }

    #[test]
    fn the_rush_ends_at_the_first_long_idle_gap_and_later_spells_only_add_to_the_busy_time() {
        // A CPU clock the test sets: the server used `n` ms so far, the client twice that.
        let cpu_ms = Arc::new(AtomicU64::new(100));
        let rec = Recorder::new(Box::new({
            let cpu_ms = cpu_ms.clone();
            move || {
                let n = cpu_ms.load(Ordering::Relaxed);
                CpuTimes {
                    server: Some(Duration::from_millis(n)),
                    client: Some(Duration::from_millis(2 * n)),
                }
            }
        }));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        rec.started(Op::Read, ms(0));
        cpu_ms.store(101, Ordering::Relaxed);
        rec.started(Op::Hold, ms(0));
        rec.finished_at(ms(1), Op::Read, ms(0), Some(&ok()), None);
        assert!(rec.lock().rush().is_none(), "one request is still in flight");
        rec.finished_at(ms(2), Op::Hold, ms(0), Some(&ok()), None);
        // None in flight: if nothing follows, that was the rush.
        assert_eq!(rec.lock().rush().map(|r| r.requests), Some(2));

        // A moment with none in flight in mid-rush does not end it.
        rec.started(Op::Checkout, ms(3));
        assert!(rec.lock().rush().is_none(), "in flight again: the rush goes on");
        cpu_ms.store(108, Ordering::Relaxed);
        rec.finished_at(ms(10), Op::Checkout, ms(3), Some(&ok()), None);
        // CPU used after the rush is not the rush's.
        cpu_ms.store(500, Ordering::Relaxed);

        // A gap of RUSH_GAP ends it: the next spell (an expiry wakes a waiting buyer) is
        // counted in the busy time only.
        let later = 10 + RUSH_GAP.as_millis() as u64;
        rec.started(Op::HoldStatus, ms(later));
        rec.finished_at(ms(later + 5), Op::HoldStatus, ms(later), None, None);
        let s = rec.lock();
        let rush = s.rush().expect("the rush is over");
        assert_eq!(rush.requests, 3);
        assert_eq!(rush.per_op[Op::Read as usize], 1);
        assert_eq!(rush.per_op[Op::Hold as usize], 1);
        assert_eq!(rush.per_op[Op::Checkout as usize], 1);
        assert_eq!(rush.per_op[Op::HoldStatus as usize], 0);
        // Busy time: 0–2 ms and 3–10 ms in the rush, then 5 ms more.
        assert_eq!(rush.duration, Duration::from_millis(9));
        // CPU from the first request to the rush's last answer.
        assert_eq!(
            rush.cpu,
            CpuTimes {
                server: Some(Duration::from_millis(8)),
                client: Some(Duration::from_millis(16)),
            }
        );
        assert_eq!(s.busy, Duration::from_millis(14));
        assert_eq!(s.requests, 4);
        assert_eq!(s.transport_errors, 1);
    }

    #[test]
    fn polls_are_recorded_but_neither_counted_as_requests_nor_keep_the_client_busy() {
        let rec = Recorder::default();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // A poll answered while a hold is in flight does not end the hold's busy spell.
        rec.started(Op::Hold, ms(0));
        rec.started(Op::OrderStatus, ms(0));
        rec.finished_at(ms(1), Op::OrderStatus, ms(0), Some(&ok()), None);
        assert!(rec.lock().rush().is_none(), "the hold is still in flight");
        rec.finished_at(ms(5), Op::Hold, ms(0), Some(&ok()), None);
        // Polls in the idle gap after it neither bridge the gap nor add busy time.
        let later = 5 + RUSH_GAP.as_millis() as u64;
        for at in (10..later).step_by(10) {
            rec.started(Op::OrderStatus, ms(at));
            rec.finished_at(ms(at + 2), Op::OrderStatus, ms(at), Some(&ok()), None);
        }
        rec.started(Op::Pay, ms(later));
        rec.finished_at(ms(later + 1), Op::Pay, ms(later), Some(&ok()), None);
        let s = rec.lock();
        assert_eq!(s.requests, 2);
        assert_eq!(s.polls, 1 + (10..later).step_by(10).count() as u64);
        assert_eq!(s.busy, Duration::from_millis(6));
        let rush = s.rush().expect("the gap ended the rush");
        assert_eq!((rush.requests, rush.duration), (1, Duration::from_millis(5)));
        // Recorded all the same: latency and status.
        assert_eq!(s.latency_us[Op::OrderStatus as usize].len(), s.polls);
        assert_eq!(s.statuses[&200], s.requests + s.polls);
    }
}
