//! Connection limits, under axum's server loop (`axum::serve` with our [`LimitedListener`]):
//!
//! - **At most `max_connections` open.** The listener takes a permit before it accepts; the
//!   connection gives it back when it closes. Beyond the limit new connections wait in the
//!   kernel's accept backlog (their requests are answered once a slot frees; when the backlog
//!   is full too the kernel drops new SYNs and clients retry), as HAProxy's `maxconn` and Go's
//!   `LimitListener` do: a burst is delayed, not refused.
//! - **Header read timeout**: from a request's first byte, its head (request line and headers)
//!   must arrive within `header_read_timeout`, or the connection is closed (slowloris).
//! - **Idle timeout**: a connection with no request in progress (before its first, or after an
//!   answer on keep-alive) is closed after `idle_timeout` without a byte.
//! - **Write timeout**: a write that waits `write_timeout` for the client to drain its socket
//!   (a reader that stopped reading: an event stream nobody reads, a client stuck behind a full
//!   window) fails, and the connection closes, so a stalled reader cannot keep a connection,
//!   its buffers and its subscription forever.
//! - **Streams stay busy**: an answer marked [`LongLived`] (an event stream) keeps its request
//!   in progress until its body ends, so the idle timeout does not cut it.
//!
//! Why not hyper's `http1::Builder::header_read_timeout`: its timer starts when the server
//! begins waiting for a head, idle wait included, so it is one knob for both limits, and
//! axum's loop sets no timer for it. [`Guarded`] tells the phases apart (as Go's
//! `ReadHeaderTimeout` and `IdleTimeout` do) by watching the bytes read and the requests in
//! progress, which [`ConnService`] counts. A request in progress (its body, the handler) is
//! bounded by the request timeout, not here.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use metrics::{Counter, Gauge};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::limits;
use crate::rate_limit::Peer;

/// The connection limits a server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: limits::MAX_CONNECTIONS_DEFAULT,
            header_read_timeout: limits::HEADER_READ_TIMEOUT_DEFAULT,
            idle_timeout: limits::IDLE_TIMEOUT_DEFAULT,
            write_timeout: limits::WRITE_TIMEOUT_DEFAULT,
        }
    }
}

/// Metric handles shared by every connection.
struct ConnMetrics {
    open: Gauge,
    idle_closed: Counter,
    header_closed: Counter,
    write_closed: Counter,
}

/// A TCP listener that accepts at most `max_connections` at once.
pub struct LimitedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    limits: ConnectionLimits,
    metrics: Arc<ConnMetrics>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, limits: ConnectionLimits) -> LimitedListener {
        LimitedListener {
            inner,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            metrics: Arc::new(ConnMetrics {
                open: metrics::gauge!("taquilla_http_connections"),
                idle_closed: metrics::counter!("taquilla_http_connections_timed_out_total", "phase" => "idle"),
                header_closed: metrics::counter!("taquilla_http_connections_timed_out_total", "phase" => "header"),
                write_closed: metrics::counter!("taquilla_http_connections_timed_out_total", "phase" => "write"),
            }),
        }
    }
}

impl Listener for LimitedListener {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded<TcpStream>, SocketAddr) {
        // The semaphore is never closed.
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            unreachable!("the connection semaphore is never closed")
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Answers are small and written whole: Nagle could only hold one back
                    // behind a delayed ACK.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY on an accepted connection");
                    }
                    return (Guarded::new(stream, slot, self.limits, self.metrics.clone()), addr);
                }
                Err(e) => accept_failed(e).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// As axum's own loop: a connection that failed before it was accepted is the client's
/// business; anything else (out of file descriptors) is logged and waited out.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What a connection's requests and its I/O share: requests started, and in progress.
#[derive(Default)]
pub struct ConnState {
    started: AtomicU64,
    in_progress: AtomicUsize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress and no byte of the next one: the idle timeout runs.
    Idle,
    /// Bytes of a request's head came, its handler has not started: the header timeout runs.
    Head,
    /// A request is in progress: no timeout here.
    Busy,
}

/// A connection's I/O with its slot and its timeouts (see the module documentation).
pub struct Guarded<IO> {
    io: IO,
    state: Arc<ConnState>,
    phase: Phase,
    /// Requests started when the phase was last brought up to date.
    seen_started: u64,
    /// When the phase's time is up (idle, head).
    due: Instant,
    /// The timer, set to `due` only when a read has to wait: a head that comes whole (the usual
    /// case) costs no timer update.
    deadline: Pin<Box<Sleep>>,
    /// The write timer, made the first time a write has to wait, and armed (`Some`) while one
    /// waits: a write that completes at once (the usual case) costs no timer.
    write_deadline: Option<Pin<Box<Sleep>>>,
    write_waiting: bool,
    limits: ConnectionLimits,
    metrics: Arc<ConnMetrics>,
    _slot: OwnedSemaphorePermit,
}

impl<IO> Guarded<IO> {
    fn new(io: IO, slot: OwnedSemaphorePermit, limits: ConnectionLimits, metrics: Arc<ConnMetrics>) -> Guarded<IO> {
        metrics.open.increment(1.0);
        Guarded {
            io,
            state: Arc::default(),
            phase: Phase::Idle,
            seen_started: 0,
            due: Instant::now() + limits.idle_timeout,
            deadline: Box::pin(tokio::time::sleep(limits.idle_timeout)),
            write_deadline: None,
            write_waiting: false,
            limits,
            metrics,
            _slot: slot,
        }
    }

    /// Follows the requests: busy while one is in progress; idle from when the last one ended
    /// (a request may start and end between two reads: the count of started ones tells).
    fn follow_requests(&mut self) {
        // Started first: a request counts as in progress before it counts as started.
        let started = self.state.started.load(Ordering::Acquire);
        let busy = self.state.in_progress.load(Ordering::Acquire) > 0;
        if busy {
            self.phase = Phase::Busy;
            return;
        }
        if self.phase == Phase::Busy || started != self.seen_started {
            self.seen_started = started;
            self.phase = Phase::Idle;
            self.due = Instant::now() + self.limits.idle_timeout;
        }
    }
}

impl<IO> Drop for Guarded<IO> {
    fn drop(&mut self) {
        self.metrics.open.decrement(1.0);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.follow_requests();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.phase == Phase::Idle && buf.filled().len() > before {
                    this.phase = Phase::Head;
                    this.due = Instant::now() + this.limits.header_read_timeout;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.phase == Phase::Busy {
                    return Poll::Pending;
                }
                if this.deadline.deadline() != this.due {
                    this.deadline.as_mut().reset(this.due);
                }
                ready!(this.deadline.as_mut().poll(cx));
                Poll::Ready(this.timed_out())
            }
            failed => failed,
        }
    }
}

impl<IO> Guarded<IO> {
    /// Ends the connection: an idle one as if the client had closed it (hyper closes quietly),
    /// one stuck in a head with an error.
    fn timed_out(&mut self) -> io::Result<()> {
        if self.phase == Phase::Idle {
            self.metrics.idle_closed.increment(1);
            Ok(())
        } else {
            self.metrics.header_closed.increment(1);
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not received in time",
            ))
        }
    }
}

impl<IO> Guarded<IO> {
    /// Follows a write's outcome: done clears the write timer; waiting arms it (from the first
    /// wait) and fails the write once it is up.
    fn write_timed<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.write_waiting = false;
            return polled;
        }
        let due = Instant::now() + self.limits.write_timeout;
        let deadline = self
            .write_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if !self.write_waiting {
            self.write_waiting = true;
            deadline.as_mut().reset(due);
        }
        ready!(deadline.as_mut().poll(cx));
        self.metrics.write_closed.increment(1);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read what was written in time",
        )))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.write_timed(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.write_timed(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Makes each connection's service: the application, told the peer and counting requests.
/// The listener the server runs: connection limits, inside hyper's parse errors in JSON.
pub type Listening = crate::protocol_errors::JsonErrorsListener<LimitedListener>;

#[derive(Clone)]
pub struct MakeConnService<S> {
    app: S,
}

impl<S> MakeConnService<S> {
    pub fn new(app: S) -> MakeConnService<S> {
        MakeConnService { app }
    }
}

impl<'a, S: Clone> Service<IncomingStream<'a, Listening>> for MakeConnService<S> {
    type Response = ConnService<S>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<ConnService<S>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'a, Listening>) -> Self::Future {
        std::future::ready(Ok(ConnService {
            inner: self.app.clone(),
            peer: Peer(*stream.remote_addr()),
            state: stream.io().get_ref().state.clone(),
        }))
    }
}

/// One connection's service.
#[derive(Clone)]
pub struct ConnService<S> {
    inner: S,
    peer: Peer,
    state: Arc<ConnState>,
}

impl<S> Service<Request> for ConnService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ConnFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        self.state.in_progress.fetch_add(1, Ordering::AcqRel);
        self.state.started.fetch_add(1, Ordering::AcqRel);
        ConnFuture {
            inner: self.inner.call(req),
            in_progress: Some(InProgress(self.state.clone())),
        }
    }
}

/// A request in progress on its connection, until its future ends or is dropped.
struct InProgress(Arc<ConnState>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks an answer whose body is a long-lived stream (`text/event-stream`): its request stays
/// in progress until the body ends, so the connection is busy, not idle, meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct LongLived;

pin_project! {
    pub struct ConnFuture<F> {
        #[pin]
        inner: F,
        in_progress: Option<InProgress>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for ConnFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Ok(res) = ready!(this.inner.poll(cx));
        if res.extensions().get::<LongLived>().is_none() {
            return Poll::Ready(Ok(res));
        }
        // Only streams pay for the wrapper (one more boxed body).
        let (parts, body) = res.into_parts();
        let body = axum::body::Body::new(StreamBody {
            inner: body,
            _in_progress: this.in_progress.take(),
        });
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

pin_project! {
    /// A [`LongLived`] answer's body, keeping its request in progress while it lives.
    struct StreamBody {
        #[pin]
        inner: axum::body::Body,
        _in_progress: Option<InProgress>,
    }
}

impl http_body::Body for StreamBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
