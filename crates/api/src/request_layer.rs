//! The one layer around the router. For every request it:
//!
//! - takes the correlation id from `X-Correlation-Id` (when well-formed) or makes one, hands
//!   it to handlers through the request's extensions and echoes it on the response;
//! - renders every error as our JSON body with that id, also the plain ones from routing;
//! - turns a handler panic into `500 internal` and a request over the timeout into `503`;
//! - adds `Connection: close` when the request body was left unread (see [`crate::keepalive`]);
//! - records the request metrics per route, method and status.
//!
//! It is one hand-written tower service with a concrete future on purpose. As separate
//! `from_fn` middlewares and tower-http layers applied per route, each layer cost a boxed
//! service clone and a boxed future per request, and a command (whose future is pending
//! until its fsync) paid each of them twice: a large share of a write's server CPU.
//!
//! The route label comes from [`RouteLabel`], a route layer (it runs after routing, where
//! axum knows the matched path) that hands the path out on the response.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use parking_lot::RwLock;
use pin_project_lite::pin_project;
use rustc_hash::FxHashMap;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use crate::correlation::{self, CorrelationId};
use crate::error::{ApiError, Code, PendingError, render};
use crate::keepalive::Tracked;

/// The label of requests that matched no route (bounded: one label, whatever the path).
const UNMATCHED: &str = "unmatched";

/// Route templates as `&'static str`, so metric labels need no allocation per request.
/// Bounded by the route table: only matched templates get here.
static ROUTE_NAMES: LazyLock<RwLock<FxHashMap<Box<str>, &'static str>>> = LazyLock::new(Default::default);

fn route_name(path: &str) -> &'static str {
    if let Some(name) = ROUTE_NAMES.read().get(path) {
        return name;
    }
    let mut names = ROUTE_NAMES.write();
    names
        .entry(path.into())
        .or_insert_with(|| Box::leak(path.to_owned().into_boxed_str()))
}

/// The method as a bounded label: the standard methods, else `OTHER`.
fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The matched route, handed from [`RouteLabel`] to [`RequestService`] through the response.
#[derive(Clone, Copy)]
struct RouteName(&'static str);

/// Route layer: puts the matched route's template on the response.
#[derive(Clone, Copy, Default)]
pub struct RouteLabelLayer;

impl<S> Layer<S> for RouteLabelLayer {
    type Service = RouteLabel<S>;
    fn layer(&self, inner: S) -> RouteLabel<S> {
        RouteLabel { inner }
    }
}

#[derive(Clone)]
pub struct RouteLabel<S> {
    inner: S,
}

impl<S> Service<Request> for RouteLabel<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RouteLabelFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().map(|p| route_name(p.as_str()));
        RouteLabelFuture {
            inner: self.inner.call(req),
            route,
        }
    }
}

pin_project! {
    pub struct RouteLabelFuture<F> {
        #[pin]
        inner: F,
        route: Option<&'static str>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for RouteLabelFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut res) = ready!(this.inner.poll(cx));
        if let Some(r) = *this.route {
            res.extensions_mut().insert(RouteName(r));
        }
        Poll::Ready(Ok(res))
    }
}

/// Metric handles by (route, method, status), so a request costs two atomic updates and
/// one small lookup instead of building and hashing label strings. Bounded: routes and
/// methods are bounded labels and statuses are three digits.
#[derive(Default)]
struct RequestMetrics {
    handles: RwLock<FxHashMap<MetricKey, (Counter, Histogram)>>,
}

/// The interned route's address, the method label, the status code.
type MetricKey = (usize, &'static str, u16);

impl RequestMetrics {
    fn record(&self, route: &'static str, method: &'static str, status: StatusCode, elapsed: Duration) {
        // Keyed by the route's address: route names are interned, so equal names share it.
        let key = (route.as_ptr() as usize, method, status.as_u16());
        if let Some((c, h)) = self.handles.read().get(&key) {
            c.increment(1);
            h.record(elapsed.as_secs_f64());
            return;
        }
        let mut handles = self.handles.write();
        let (c, h) = handles.entry(key).or_insert_with(|| {
            let status = status.as_str().to_owned();
            (
                metrics::counter!("taquilla_http_requests_total", "route" => route, "method" => method, "status" => status),
                metrics::histogram!("taquilla_http_request_duration_seconds", "route" => route, "method" => method),
            )
        });
        c.increment(1);
        h.record(elapsed.as_secs_f64());
    }
}

/// The outermost layer (see the module documentation).
#[derive(Clone)]
pub struct RequestLayer {
    timeout: Duration,
    metrics: Arc<RequestMetrics>,
}

impl RequestLayer {
    pub fn new(timeout: Duration) -> RequestLayer {
        RequestLayer {
            timeout,
            metrics: Arc::default(),
        }
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;
    fn layer(&self, inner: S) -> RequestService<S> {
        RequestService {
            inner,
            timeout: self.timeout,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    timeout: Duration,
    metrics: Arc<RequestMetrics>,
}

impl<S> Service<Request> for RequestService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = RequestFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let id = req
            .headers()
            .get(correlation::HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(CorrelationId::parse)
            .unwrap_or_else(CorrelationId::generate);
        let method = method_name(req.method());
        req.extensions_mut().insert(id.clone());
        let body_read = if req.body().is_end_stream() {
            None
        } else {
            let read = Arc::new(AtomicBool::new(false));
            let tracked = read.clone();
            req = req.map(|inner| Body::new(Tracked::new(inner, tracked)));
            Some(read)
        };
        // The service that was made ready goes into the future; its clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // `None`: `call` itself panicked; the future answers 500 on its first poll.
        let inner = catch_unwind(AssertUnwindSafe(|| inner.call(req))).ok();
        RequestFuture {
            inner,
            sleep: None,
            state: Some(Pending {
                started,
                id,
                method,
                body_read,
                timeout: self.timeout,
                metrics: self.metrics.clone(),
            }),
        }
    }
}

/// What the future needs once the response is there.
struct Pending {
    started: Instant,
    id: CorrelationId,
    method: &'static str,
    body_read: Option<Arc<AtomicBool>>,
    timeout: Duration,
    metrics: Arc<RequestMetrics>,
}

pin_project! {
    pub struct RequestFuture<F> {
        #[pin]
        inner: Option<F>,
        // Made on the first `Pending` only: most reads answer in one poll and never pay for a timer.
        #[pin]
        sleep: Option<Sleep>,
        state: Option<Pending>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for RequestFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(state) = this.state.as_ref() else {
            // Polled after completion: a caller bug; stay pending rather than panic.
            return Poll::Pending;
        };
        let polled = match this.inner.as_pin_mut() {
            Some(inner) => catch_unwind(AssertUnwindSafe(|| inner.poll(cx))),
            None => Err(Box::new("the service panicked in call") as Box<dyn Any + Send>),
        };
        let res = match polled {
            Ok(Poll::Ready(Ok(res))) => res,
            Err(panic) => panic_response(panic),
            Ok(Poll::Pending) => {
                if this.sleep.is_none() {
                    // From when the request came in, as if the timer had started then.
                    this.sleep
                        .set(Some(tokio::time::sleep_until(state.started + state.timeout)));
                }
                match this.sleep.as_mut().as_pin_mut().map(|s| s.poll(cx)) {
                    Some(Poll::Ready(())) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    _ => return Poll::Pending,
                }
            }
        };
        let Some(state) = this.state.take() else {
            return Poll::Pending;
        };
        Poll::Ready(Ok(finish(res, state)))
    }
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::new(Code::Internal, "internal error").into_response()
}

fn is_json(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

fn status_message(s: StatusCode) -> String {
    s.canonical_reason().unwrap_or("error").to_lowercase()
}

/// The error's JSON answer, keeping the headers that layers put on the plain one (CORS,
/// `Allow`) unless the JSON answer sets them itself.
fn rendered(plain: Response, err: &ApiError, id: &CorrelationId) -> Response {
    let mut res = render(err, id);
    let own: Vec<header::HeaderName> = res.headers().keys().cloned().collect();
    for (name, value) in plain.headers() {
        if name != header::CONTENT_LENGTH && !own.contains(name) {
            res.headers_mut().append(name.clone(), value.clone());
        }
    }
    res
}

fn finish(mut res: Response, state: Pending) -> Response {
    let Pending {
        started,
        id,
        method,
        body_read,
        metrics,
        ..
    } = state;
    let route = res.extensions().get::<RouteName>().map_or(UNMATCHED, |r| r.0);
    if let Some(PendingError(err)) = res.extensions_mut().remove::<PendingError>() {
        res = rendered(res, &err, &id);
    } else if (res.status().is_client_error() || res.status().is_server_error()) && !is_json(&res) {
        // A plain answer from routing or the timeout: same JSON shape as ours.
        let err = ApiError::new(Code::from_status(res.status()), status_message(res.status()));
        res = rendered(res, &err, &id);
    }
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(correlation::HEADER, v);
    }
    if body_read.is_some_and(|read| !read.load(Ordering::Acquire)) {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = res.status();
    metrics.record(route, method, status, started.elapsed());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Overload is a state, not a fault: a flash crowd must not flood the log with it.
        tracing::debug!(correlation_id = id.as_str(), route, "503");
    } else if status.is_server_error() {
        tracing::error!(
            correlation_id = id.as_str(),
            route,
            status = status.as_u16(),
            "server error"
        );
    }
    res
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceExt, service_fn};

    use super::RequestLayer;
    use crate::correlation::HEADER;

    async fn error_code(res: Response) -> (StatusCode, String, String) {
        let status = res.status();
        let header = res.headers()[HEADER].to_str().unwrap().to_owned();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let code = v["error"]["code"].as_str().unwrap().to_owned();
        assert_eq!(v["error"]["correlation_id"].as_str(), Some(header.as_str()));
        (status, code, header)
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_json_500_with_the_correlation_id() {
        let svc = RequestLayer::new(Duration::from_secs(30)).layer(service_fn(|_: Request| async {
            if true {
                panic!("boom");
            }
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        }));
        let req = Request::builder()
            .uri("/x")
            .header(HEADER, "req-1")
            .body(Body::empty())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(
            error_code(res).await,
            (StatusCode::INTERNAL_SERVER_ERROR, "internal".into(), "req-1".into())
        );
    }

    #[tokio::test]
    async fn a_service_panicking_in_call_is_a_json_500_too() {
        #[allow(unreachable_code)]
        let svc = RequestLayer::new(Duration::from_secs(30)).layer(service_fn(|_: Request| {
            panic!("in call");
            async { Ok::<Response, Infallible>(StatusCode::OK.into_response()) }
        }));
        let req = Request::builder()
            .uri("/x")
            .header(HEADER, "req-2")
            .body(Body::empty())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(
            error_code(res).await,
            (StatusCode::INTERNAL_SERVER_ERROR, "internal".into(), "req-2".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_timeout_is_a_json_503() {
        let svc = RequestLayer::new(Duration::from_secs(30)).layer(service_fn(|_: Request| async {
            std::future::pending::<()>().await;
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        }));
        let started = tokio::time::Instant::now();
        let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        let (status, code, id) = error_code(res).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        assert_eq!(id.len(), 24, "a generated correlation id: {id}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_request_within_the_timeout_is_answered() {
        let svc = RequestLayer::new(Duration::from_secs(30)).layer(service_fn(|_: Request| async {
            tokio::time::sleep(Duration::from_secs(29)).await;
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        }));
        let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get(axum::http::header::CONNECTION).is_none());
    }

    #[tokio::test]
    async fn an_unread_body_closes_the_connection_and_a_read_one_does_not() {
        let layer = RequestLayer::new(Duration::from_secs(30));
        let ignores = layer.layer(service_fn(|_: Request| async {
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        }));
        let res = ignores.oneshot(Request::new(Body::from("{}"))).await.unwrap();
        assert_eq!(res.headers()[axum::http::header::CONNECTION], "close");

        let reads = layer.layer(service_fn(|req: Request| async move {
            let _ = req.into_body().collect().await;
            Ok::<Response, Infallible>(StatusCode::OK.into_response())
        }));
        let res = reads.oneshot(Request::new(Body::from("{}"))).await.unwrap();
        assert!(res.headers().get(axum::http::header::CONNECTION).is_none());
    }

    #[tokio::test]
    async fn a_plain_error_from_routing_gets_the_json_shape() {
        let svc = RequestLayer::new(Duration::from_secs(30)).layer(service_fn(|_: Request| async {
            Ok::<Response, Infallible>(StatusCode::METHOD_NOT_ALLOWED.into_response())
        }));
        let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
        let (status, code, _) = error_code(res).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        );
    }

    #[test]
    fn labels_are_bounded() {
        assert_eq!(
            super::method_name(&axum::http::Method::from_bytes(b"BREW").unwrap()),
            "OTHER"
        );
        let a = super::route_name("/v1/x/{id}");
        let b = super::route_name(&String::from("/v1/x/{id}"));
        assert!(std::ptr::eq(a, b), "one interned name per route");
    }
}
