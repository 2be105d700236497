//! The application under test, in process (zero2prod's `tests/api/helpers.rs::spawn_app`
//! shape): [`spawn_app`] runs the real [`taquilla_api::Application`] on `127.0.0.1:0` with its
//! own data directory, and every request goes over real HTTP (reqwest) to it. [`Api`] has one
//! typed helper per endpoint plus a generic [`Api::send`] for bad input; every answer comes
//! back as a [`Resp`] with the assertions `expect` and `expect_error`. Every `error.code`
//! received is recorded in the app's [`Codes`], so that `errors::every_code_is_covered` can
//! compare the codes the tests really got with the table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use taquilla_api::{
    ApiSettings, AppConfig, AppState, Application, ConnectionLimits, CorsSettings, PushLimits, RateLimitSettings,
    RunningApp, Secrets,
};
use taquilla_domain::{BuyerId, Timestamp};
use taquilla_engine::{Clock, Engine, EngineConfig, ManualClock, SystemClock};
use taquilla_followers::{Providers, SagaConfig};
use taquilla_payments::config::PaymentFlags;
use taquilla_payments::resilience::ResilienceConfig;
use taquilla_payments::testing::fake_stripe::{FAKE_SECRET_KEY, FakeStripe, signed_webhook};
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const BUYER_SECRET: &str = "test-buyer-secret-0123456789";
/// The Stripe webhook secrets of [`AppOptions::stripe`]: the current one and the next (a roll).
pub const WEBHOOK_SECRETS: [&str; 2] = ["whsec_taquilla_test_old", "whsec_taquilla_test_new"];

/// The error codes received, by every app that shares this recorder, and every answer's
/// method, path and status (for [`Codes::undeclared`]).
#[derive(Clone, Default)]
pub struct Codes(
    Arc<Mutex<BTreeSet<String>>>,
    Arc<Mutex<BTreeSet<(String, String, u16)>>>,
);

impl Codes {
    pub fn record(&self, code: &str) {
        self.0.lock().expect("codes lock").insert(code.to_string());
    }

    fn record_answer(&self, method: &Method, path: &str, status: u16) {
        let answer = (method.as_str().to_lowercase(), path.to_string(), status);
        self.1.lock().expect("answers lock").insert(answer);
    }

    pub fn seen(&self) -> BTreeSet<String> {
        self.0.lock().expect("codes lock").clone()
    }

    /// The answers received whose status the OpenAPI operation of their route does not
    /// declare, as `METHOD path status`. Requests no operation describes (unknown routes, other
    /// methods) are the fallbacks' and not looked at.
    pub fn undeclared(&self) -> Vec<String> {
        let doc: Value = serde_json::from_str(&taquilla_api::openapi::document_json()).expect("document");
        let paths = doc["paths"].as_object().expect("paths");
        let answers = self.1.lock().expect("answers lock").clone();
        let mut out = Vec::new();
        for (method, path, status) in answers {
            let op = paths
                .iter()
                .filter(|(template, _)| template_matches(template, &path))
                .find_map(|(_, item)| item.get(&method));
            if let Some(op) = op
                && op["responses"].get(status.to_string()).is_none()
            {
                out.push(format!("{} {path} {status}", method.to_uppercase()));
            }
        }
        out
    }
}

/// Whether `path` is an instance of the route `template` (`{…}` stands for one segment).
fn template_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

/// An answer, with the body parsed as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts `status` and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        &self.json
    }

    /// [`Resp::expect`], then the string field `field` of the body (an id, usually).
    #[track_caller]
    pub fn expect_id(&self, status: u16) -> String {
        let body = self.expect(status);
        body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {body}"))
            .to_string()
    }

    /// Asserts the error shape: `status`, `error.code`, a message, and `error.correlation_id`
    /// equal to the `X-Correlation-Id` response header.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            (self.status, self.json["error"]["code"].as_str()),
            (status, Some(code)),
            "body: {}",
            self.text
        );
        self.assert_error_shape();
        &self.json["error"]
    }

    /// Asserts that this is a 4xx/5xx answer in our JSON error shape.
    #[track_caller]
    pub fn assert_error_shape(&self) {
        let e = &self.json["error"];
        assert!(
            e["code"].as_str().is_some_and(|c| !c.is_empty()) && e["message"].is_string(),
            "not the JSON error shape (status {}): {:?}",
            self.status,
            self.text
        );
        let id = e["correlation_id"].as_str().expect("error.correlation_id");
        assert!(!id.is_empty(), "empty correlation id");
        assert_eq!(
            Some(id),
            self.header("x-correlation-id"),
            "error.correlation_id differs from the response header"
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error without Content-Type: application/json"
        );
    }
}

/// How to start the application. The defaults: system clock, no payment methods, the default
/// body limit and engine queues, a saga retrying fast, no `/metrics`, a recorder of its own.
#[derive(Clone)]
pub struct AppOptions {
    /// The payment providers (kept across the app's restarts, as a real provider would be).
    providers: Providers,
    saga: SagaConfig,
    body_limit_bytes: Option<usize>,
    queue_capacity: Option<usize>,
    batch_max: Option<usize>,
    sales_max: Option<usize>,
    manual_clock: bool,
    metrics: bool,
    codes: Codes,
    /// Where the data directory goes (a fresh one inside it), instead of the system temp dir.
    data_dir_in: Option<PathBuf>,
    segment_size_bytes: Option<u64>,
    rate_limits: RateLimitSettings,
    connections: ConnectionLimits,
    cors: CorsSettings,
    push: PushLimits,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            providers: Providers::default(),
            // Fast retries: tests wait for the saga.
            saga: SagaConfig {
                retry_min: Duration::from_millis(20),
                retry_max: Duration::from_millis(500),
                ..SagaConfig::default()
            },
            body_limit_bytes: None,
            queue_capacity: None,
            batch_max: None,
            sales_max: None,
            manual_clock: false,
            metrics: false,
            codes: Codes::default(),
            data_dir_in: None,
            segment_size_bytes: None,
            // Tests send many requests from one address and buyer fast; the limits' own tests
            // turn them on.
            rate_limits: RateLimitSettings::off(),
            connections: ConnectionLimits::default(),
            cors: CorsSettings::default(),
            push: PushLimits::default(),
        }
    }
}

impl AppOptions {
    /// `POST /v1/orders/{id}/pay {"method": "test"}` allowed (`--allow-test-payments`).
    pub fn test_payments(self) -> Self {
        self.payments(PaymentFlags {
            payment_methods: Some("test".into()),
            ..PaymentFlags::default()
        })
    }

    /// The payment providers these flags make (`--payment-methods` and friends).
    pub fn payments(self, flags: PaymentFlags) -> Self {
        self.payments_with(flags, &ResilienceConfig::default())
    }

    /// [`AppOptions::payments`] with each provider behind `resilience` (deadlines, retries,
    /// breaker thresholds).
    /// With [`AppOptions::metrics`] first, the providers' gauges go to `/metrics` from the start.
    pub fn payments_with(mut self, flags: PaymentFlags, resilience: &ResilienceConfig) -> Self {
        if self.metrics {
            prometheus();
        }
        let settings = flags.resolve().expect("valid payment flags");
        self.providers = Providers::build(&settings, resilience).expect("providers");
        self
    }

    /// Stripe (and `test`) against `fake`, with the webhook secrets [`WEBHOOK_SECRETS`], behind
    /// `resilience`.
    pub fn stripe(self, fake: &FakeStripe, resilience: &ResilienceConfig) -> Self {
        let flags = PaymentFlags {
            payment_methods: Some("stripe,test".into()),
            stripe_secret_key: Some(FAKE_SECRET_KEY.into()),
            stripe_webhook_secrets: WEBHOOK_SECRETS.iter().map(|s| s.to_string()).collect(),
            stripe_api_base: Some(fake.uri()),
            ..PaymentFlags::default()
        };
        self.payments_with(flags, resilience)
    }

    /// How long the saga lets a payment await its buyer before asking the provider.
    pub fn reconcile_after(mut self, d: Duration) -> Self {
        self.saga.reconcile_after = d;
        self
    }

    pub fn body_limit_bytes(mut self, n: usize) -> Self {
        self.body_limit_bytes = Some(n);
        self
    }

    /// The engine's per-shard queue length and batch size.
    pub fn queue(mut self, capacity: usize, batch_max: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self.batch_max = Some(batch_max);
        self
    }

    /// The engine's limit on sales.
    pub fn sales_max(mut self, n: usize) -> Self {
        self.sales_max = Some(n);
        self
    }

    /// A [`ManualClock`] (starting at the current second) instead of the system clock: time
    /// moves only through [`TestApp::advance`].
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// Serves `/metrics` from the process-wide Prometheus recorder.
    pub fn metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// The rate limits (off unless set).
    pub fn rate_limits(mut self, limits: RateLimitSettings) -> Self {
        self.rate_limits = limits;
        self
    }

    /// The connection limits.
    pub fn connections(mut self, limits: ConnectionLimits) -> Self {
        self.connections = limits;
        self
    }

    /// The live-push subscriber limits.
    pub fn push(mut self, limits: PushLimits) -> Self {
        self.push = limits;
        self
    }

    /// The browser origins allowed (CORS).
    pub fn cors(mut self, cors: CorsSettings) -> Self {
        self.cors = cors;
        self
    }

    /// Records the error codes received into `codes` (shared with other apps).
    pub fn codes(mut self, codes: &Codes) -> Self {
        self.codes = codes.clone();
        self
    }

    fn settings(&self) -> ApiSettings {
        let defaults = ApiSettings::default();
        ApiSettings {
            body_limit_bytes: self.body_limit_bytes.unwrap_or(defaults.body_limit_bytes),
            rate_limits: self.rate_limits.clone(),
            connections: self.connections,
            cors: self.cors.clone(),
            push: self.push,
            ..defaults
        }
    }

    /// The data directory inside `parent` (e.g. a small file system the test mounted).
    pub fn data_dir_in(mut self, parent: &Path) -> Self {
        self.data_dir_in = Some(parent.to_path_buf());
        self
    }

    /// Log segments of `bytes` (default 4 MiB).
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = Some(bytes);
        self
    }

    fn engine(&self) -> EngineConfig {
        let defaults = EngineConfig::default();
        EngineConfig {
            queue_capacity: self.queue_capacity.unwrap_or(defaults.queue_capacity),
            batch_max: self.batch_max.unwrap_or(defaults.batch_max),
            sales_max: self.sales_max.unwrap_or(defaults.sales_max),
            // Each app preallocates its first segment at open: keep that small.
            segment_size_bytes: self.segment_size_bytes.unwrap_or(4 << 20),
            ..defaults
        }
    }
}

fn secrets() -> Secrets {
    Secrets {
        admin_token: ADMIN_TOKEN.to_string(),
        buyer_secret: BUYER_SECRET.as_bytes().to_vec(),
    }
}

/// The Prometheus recorder is process-global: installed once, by the first app that wants
/// `/metrics`, with the binary's histogram buckets (so that histograms render as buckets).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            taquilla_api::prometheus::install_recorder().expect("the only Prometheus recorder of this process")
        })
        .clone()
}

fn start_of_this_second() -> Timestamp {
    Timestamp(SystemClock.now().0 / 1000 * 1000)
}

/// A client of one running application: one typed helper per endpoint.
#[derive(Clone)]
pub struct Api {
    base: String,
    pub http: reqwest::Client,
    clock: Arc<dyn Clock>,
    codes: Codes,
    /// Sent with every request (see [`Api::with_header`]).
    headers: Vec<(String, String)>,
}

impl Api {
    fn new(addr: std::net::SocketAddr, clock: Arc<dyn Clock>, codes: Codes) -> Api {
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            clock,
            codes,
            headers: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The same client, sending `name: value` with every request (a correlation id, say).
    pub fn with_header(&self, name: &str, value: &str) -> Api {
        let mut api = self.clone();
        api.headers.push((name.to_string(), value.to_string()));
        api
    }

    /// A request to build by hand (raw bodies, streams, odd headers); send it with
    /// [`Api::execute`].
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self.http.request(method, self.url(path));
        for (k, v) in &self.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb
    }

    /// Sends a request built with [`Api::request`]; records the error code it answers.
    pub async fn execute(&self, rb: RequestBuilder) -> Resp {
        let (client, req) = rb.build_split();
        let req = req.expect("a well-formed request");
        let (method, path) = (req.method().clone(), req.url().path().to_string());
        let resp = self.read_resp(client.execute(req).await.expect("request failed")).await;
        self.codes.record_answer(&method, &path, resp.status);
        resp
    }

    /// Sends `request` as raw bytes on a connection of its own (what an HTTP client would
    /// refuse to send) and reads until the server closes it. The answer, if any, as a [`Resp`]
    /// (its `error.code` recorded).
    pub async fn raw(&self, request: &[u8]) -> Option<Resp> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.strip_prefix("http://").expect("http URL");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // The server may answer (and close) before reading everything sent.
        let _ = stream.write_all(request).await;
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "no answer within 10 s to a raw request");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        let mut headers = HeaderMap::new();
        for line in head.split("\r\n").skip(1) {
            let (k, v) = line.split_once(':')?;
            let name = reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).ok()?;
            headers.append(name, v.trim().parse().ok()?);
        }
        let json = serde_json::from_str(body).unwrap_or(Value::Null);
        if let Some(code) = json["error"]["code"].as_str() {
            self.codes.record(code);
        }
        Some(Resp {
            status,
            headers,
            text: body.to_string(),
            json,
        })
    }

    /// The recorder of this client's answers.
    pub fn codes(&self) -> &Codes {
        &self.codes
    }

    /// Reads an answer whole and records its `error.code`, if any.
    pub async fn read_resp(&self, r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        // An event stream does not end: its body is left unread (the `push` tests read it).
        let stream = headers
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let text = if stream {
            String::new()
        } else {
            r.text().await.expect("read body")
        };
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(code) = json["error"]["code"].as_str() {
            self.codes.record(code);
        }
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    /// Sends any request: `bearer` as the token, `body` as JSON when given, extra `headers`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self.request(method, path);
        if let Some(t) = bearer {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.execute(rb).await
    }

    async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        self.send(method, path, Some(ADMIN_TOKEN), body, &[]).await
    }

    async fn buyer(&self, token: &str, method: Method, path: &str, body: Option<&Value>) -> Resp {
        self.send(method, path, Some(token), body, &[]).await
    }

    /// Unix seconds now on the app's clock.
    pub fn now_secs(&self) -> i64 {
        self.clock.now().0.div_euclid(1000)
    }

    /// A buyer token valid for an hour on the app's clock, minted with the shared secret
    /// (the documented format).
    pub fn buyer_token(&self, buyer: &str) -> String {
        self.buyer_token_expiring(buyer, self.now_secs() + 3600)
    }

    pub fn buyer_token_expiring(&self, buyer: &str, expires_at_secs: i64) -> String {
        let id = BuyerId::parse(buyer).expect("valid buyer id");
        taquilla_api::mint_buyer_token(BUYER_SECRET.as_bytes(), &id, expires_at_secs)
    }

    /// RFC 3339 UTC time `d` from now on the app's clock.
    pub fn time_in(&self, d: Duration) -> String {
        let ms = self.clock.now().0 + d.as_millis() as i64;
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .expect("a representable time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    }

    // ---------- admin ----------

    /// `POST /v1/admin/events`
    pub async fn create_event(&self, body: &Value) -> Resp {
        self.admin(Method::POST, "/v1/admin/events", Some(body)).await
    }

    /// `POST /v1/admin/events/{event_id}/ticket-types`
    pub async fn create_ticket_type(&self, event: &str, body: &Value) -> Resp {
        self.admin(
            Method::POST,
            &format!("/v1/admin/events/{event}/ticket-types"),
            Some(body),
        )
        .await
    }

    /// `POST /v1/admin/events/{event_id}/quotas`
    pub async fn create_quota(&self, event: &str, body: &Value) -> Resp {
        self.admin(Method::POST, &format!("/v1/admin/events/{event}/quotas"), Some(body))
            .await
    }

    /// `POST /v1/admin/events/{event_id}/open`
    pub async fn open(&self, event: &str) -> Resp {
        self.admin(Method::POST, &format!("/v1/admin/events/{event}/open"), None)
            .await
    }

    /// `POST /v1/admin/events/{event_id}/pause`
    pub async fn pause(&self, event: &str) -> Resp {
        self.admin(Method::POST, &format!("/v1/admin/events/{event}/pause"), None)
            .await
    }

    /// `POST /v1/admin/events/{event_id}/close`
    pub async fn close(&self, event: &str) -> Resp {
        self.admin(Method::POST, &format!("/v1/admin/events/{event}/close"), None)
            .await
    }

    /// `GET /v1/admin/events/{event_id}/stats`
    pub async fn get_stats(&self, event: &str) -> Resp {
        self.admin(Method::GET, &format!("/v1/admin/events/{event}/stats"), None)
            .await
    }

    /// `POST /v1/admin/events/{event_id}/checkins`
    pub async fn checkin(&self, event: &str, ticket_code: &str) -> Resp {
        let body = json!({ "ticket_code": ticket_code });
        self.admin(Method::POST, &format!("/v1/admin/events/{event}/checkins"), Some(&body))
            .await
    }

    /// `POST /v1/admin/orders/{order_id}/refund`: the tickets named, or (`None`) all of them.
    pub async fn refund(&self, order: &str, ticket_codes: Option<&[&str]>) -> Resp {
        let body = match ticket_codes {
            Some(codes) => json!({ "ticket_codes": codes }),
            None => json!({}),
        };
        self.admin(Method::POST, &format!("/v1/admin/orders/{order}/refund"), Some(&body))
            .await
    }

    /// `POST /v1/admin/orders/{order_id}/confirm-payment {payment_ref}`: a payment received
    /// offline.
    pub async fn confirm_payment(&self, order: &str, payment_ref: &str) -> Resp {
        let body = json!({ "payment_ref": payment_ref });
        let path = format!("/v1/admin/orders/{order}/confirm-payment");
        self.admin(Method::POST, &path, Some(&body)).await
    }

    /// `GET /v1/admin/orders/{order_id}`: the order with its payments' timeline and refunds.
    pub async fn admin_order(&self, order: &str) -> Resp {
        self.admin(Method::GET, &format!("/v1/admin/orders/{order}"), None)
            .await
    }

    /// `GET /v1/admin/orders?{query}` (`query` already URL-encoded).
    pub async fn list_orders(&self, query: &str) -> Resp {
        self.admin(Method::GET, &format!("/v1/admin/orders?{query}"), None)
            .await
    }

    /// Every order `GET /v1/admin/orders?{query}` finds, page by page (`limit` per page).
    pub async fn all_orders(&self, query: &str, limit: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let r = self.list_orders(&format!("{query}&limit={limit}{after}")).await;
            let page = r.expect(200);
            out.extend(page["orders"].as_array().expect("orders").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => after = format!("&after={c}"),
                None => return out,
            }
        }
    }

    /// `PATCH /v1/admin/events/{event_id}/ticket-types/{ticket_type_id}`
    pub async fn edit_ticket_type(&self, event: &str, ticket_type: u32, body: &Value) -> Resp {
        let path = format!("/v1/admin/events/{event}/ticket-types/{ticket_type}");
        self.admin(Method::PATCH, &path, Some(body)).await
    }

    /// `PATCH /v1/admin/events/{event_id}/quotas/{quota_id}` with `{capacity}`.
    pub async fn edit_quota(&self, event: &str, quota: u32, capacity: u32) -> Resp {
        let path = format!("/v1/admin/events/{event}/quotas/{quota}");
        self.admin(Method::PATCH, &path, Some(&json!({ "capacity": capacity })))
            .await
    }

    /// `POST /v1/admin/events/{event_id}/archive`
    pub async fn archive(&self, event: &str) -> Resp {
        self.admin(Method::POST, &format!("/v1/admin/events/{event}/archive"), None)
            .await
    }

    /// `GET /v1/admin/events/{event_id}/attendees{query}` with `Accept: accept`.
    pub async fn attendees(&self, event: &str, query: &str, accept: &str) -> Resp {
        let path = format!("/v1/admin/events/{event}/attendees{query}");
        let headers = [("accept", accept)];
        self.send(Method::GET, &path, Some(ADMIN_TOKEN), None, &headers).await
    }

    /// `POST /v1/admin/orders/{order_id}/cancel`
    pub async fn admin_cancel(&self, order: &str) -> Resp {
        self.admin(Method::POST, &format!("/v1/admin/orders/{order}/cancel"), None)
            .await
    }

    /// `POST /v1/admin/buyer-tokens` with `{buyer_id, ttl_secs?}`.
    pub async fn issue_buyer_token(&self, buyer: &str, ttl_secs: Option<u64>) -> Resp {
        let mut body = json!({ "buyer_id": buyer });
        if let Some(ttl) = ttl_secs {
            body["ttl_secs"] = json!(ttl);
        }
        self.admin(Method::POST, "/v1/admin/buyer-tokens", Some(&body)).await
    }

    /// `GET /v1/admin/feed?after=…&limit=…`
    pub async fn feed_page(&self, after: &str, limit: usize) -> Resp {
        self.admin(
            Method::GET,
            &format!("/v1/admin/feed?after={after}&limit={limit}"),
            None,
        )
        .await
    }

    /// `POST /v1/admin/api-keys {name, scopes}` with the bootstrap admin token.
    pub async fn create_api_key(&self, name: &str, scopes: &[&str]) -> Resp {
        let body = json!({ "name": name, "scopes": scopes });
        self.admin(Method::POST, "/v1/admin/api-keys", Some(&body)).await
    }

    /// A new API key with `scopes` (asserting `201`): its id and its key.
    pub async fn api_key(&self, scopes: &[&str]) -> (String, String) {
        let r = self.create_api_key(&scopes.join("+"), scopes).await;
        let body = r.expect(201);
        let field = |f: &str| {
            body[f]
                .as_str()
                .unwrap_or_else(|| panic!("no {f} in {body}"))
                .to_string()
        };
        (field("id"), field("key"))
    }

    /// `GET /v1/admin/api-keys`
    pub async fn list_api_keys(&self) -> Resp {
        self.admin(Method::GET, "/v1/admin/api-keys", None).await
    }

    /// `DELETE /v1/admin/api-keys/{key_id}`
    pub async fn revoke_api_key(&self, key_id: &str) -> Resp {
        self.admin(Method::DELETE, &format!("/v1/admin/api-keys/{key_id}"), None)
            .await
    }

    // ---------- public and buyer ----------

    /// `GET /v1/events`
    pub async fn list_sales(&self) -> Resp {
        self.send(Method::GET, "/v1/events", None, None, &[]).await
    }

    /// `GET /v1/events/{event_id}`
    pub async fn get_sale(&self, event: &str) -> Resp {
        self.send(Method::GET, &format!("/v1/events/{event}"), None, None, &[])
            .await
    }

    /// `GET /v1/events/{event_id}` with `If-None-Match: tag`.
    pub async fn get_sale_if_none_match(&self, event: &str, tag: &str) -> Resp {
        let path = format!("/v1/events/{event}");
        self.send(Method::GET, &path, None, None, &[("if-none-match", tag)])
            .await
    }

    /// `POST /v1/events/{event_id}/holds`, with an `Idempotency-Key` when given.
    pub async fn place_hold(&self, token: &str, event: &str, body: &Value, key: Option<&str>) -> Resp {
        let path = format!("/v1/events/{event}/holds");
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.send(Method::POST, &path, Some(token), Some(body), &headers).await
    }

    /// `PUT /v1/admin/events/{event_id}/waiting-room`
    pub async fn configure_room(&self, event: &str, body: &Value) -> Resp {
        let path = format!("/v1/admin/events/{event}/waiting-room");
        self.admin(Method::PUT, &path, Some(body)).await
    }

    /// `POST /v1/events/{event_id}/waiting-room`
    pub async fn join_room(&self, token: &str, event: &str) -> Resp {
        let path = format!("/v1/events/{event}/waiting-room");
        self.buyer(token, Method::POST, &path, None).await
    }

    /// `GET /v1/events/{event_id}/waiting-room`
    pub async fn room_status(&self, token: &str, event: &str) -> Resp {
        let path = format!("/v1/events/{event}/waiting-room");
        self.buyer(token, Method::GET, &path, None).await
    }

    /// `DELETE /v1/events/{event_id}/waiting-room`
    pub async fn leave_room(&self, token: &str, event: &str) -> Resp {
        let path = format!("/v1/events/{event}/waiting-room");
        self.buyer(token, Method::DELETE, &path, None).await
    }

    /// `POST /v1/events/{event_id}/holds` with an `Admission-Token`.
    pub async fn place_admitted_hold(&self, token: &str, event: &str, body: &Value, admission: &str) -> Resp {
        let path = format!("/v1/events/{event}/holds");
        self.send(
            Method::POST,
            &path,
            Some(token),
            Some(body),
            &[("admission-token", admission)],
        )
        .await
    }

    /// `GET /v1/holds/{hold_id}`
    pub async fn get_hold(&self, token: &str, hold: &str) -> Resp {
        self.buyer(token, Method::GET, &format!("/v1/holds/{hold}"), None).await
    }

    /// `DELETE /v1/holds/{hold_id}`
    pub async fn release_hold(&self, token: &str, hold: &str) -> Resp {
        self.buyer(token, Method::DELETE, &format!("/v1/holds/{hold}"), None)
            .await
    }

    /// `POST /v1/holds/{hold_id}/checkout`, with an `Idempotency-Key` when given.
    pub async fn checkout(&self, token: &str, hold: &str, key: Option<&str>) -> Resp {
        let path = format!("/v1/holds/{hold}/checkout");
        let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
        self.send(Method::POST, &path, Some(token), None, &headers).await
    }

    /// `GET /v1/orders/{order_id}`
    pub async fn get_order(&self, token: &str, order: &str) -> Resp {
        self.buyer(token, Method::GET, &format!("/v1/orders/{order}"), None)
            .await
    }

    /// `POST /v1/orders/{order_id}/pay {"method"}` with the default wait: `200` once paid,
    /// `202` while under way (a Stripe payment: once created, with its client secret).
    pub async fn pay_with(&self, token: &str, order: &str, method: &str) -> Resp {
        let body = json!({ "method": method });
        self.buyer(token, Method::POST, &format!("/v1/orders/{order}/pay"), Some(&body))
            .await
    }

    /// `POST /v1/orders/{order_id}/pay` with `Prefer: wait=<secs>`: answered once the order is
    /// paid or the attempt over (or the wait is up).
    pub async fn pay_waiting(&self, token: &str, order: &str, method: &str, secs: u64) -> Resp {
        let body = json!({ "method": method });
        let prefer = format!("wait={secs}");
        let path = format!("/v1/orders/{order}/pay");
        self.send(
            Method::POST,
            &path,
            Some(token),
            Some(&body),
            &[("prefer", prefer.as_str())],
        )
        .await
    }

    /// `POST /v1/orders/{order_id}/pay` with the test payment method, waiting for its outcome
    /// (the test provider answers at once: `200` paid).
    pub async fn pay(&self, token: &str, order: &str) -> Resp {
        self.pay_waiting(token, order, "test", 5).await
    }

    /// `POST /v1/orders/{order_id}/cancel`
    pub async fn buyer_cancel(&self, token: &str, order: &str) -> Resp {
        self.buyer(token, Method::POST, &format!("/v1/orders/{order}/cancel"), None)
            .await
    }

    /// `POST /v1/webhooks/stripe` with this `Stripe-Signature` (none when `None`) and body.
    pub async fn stripe_webhook(&self, signature: Option<&str>, body: &str) -> Resp {
        let mut rb = self
            .request(Method::POST, "/v1/webhooks/stripe")
            .header("content-type", "application/json");
        if let Some(sig) = signature {
            rb = rb.header("stripe-signature", sig);
        }
        self.execute(rb.body(body.to_string())).await
    }

    /// `notification` signed now (the app's clock) with the first of [`WEBHOOK_SECRETS`], as
    /// Stripe delivers it.
    pub async fn deliver(&self, notification: &Value) -> Resp {
        let (sig, body) = signed_webhook(notification, WEBHOOK_SECRETS[0], self.now_secs());
        self.stripe_webhook(Some(&sig), &body).await
    }

    /// Reads the buyer's order until `done` says so (the saga works in the background), at
    /// most `limit`; returns the last view. Fails the test when time is up.
    pub async fn order_until(&self, token: &str, order: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let give_up = tokio::time::Instant::now() + limit;
        loop {
            let view = self.get_order(token, order).await.expect(200).clone();
            if done(&view) {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "order {order} not there after {limit:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // ---------- operations ----------

    /// `GET /healthz`
    pub async fn healthz(&self) -> Resp {
        self.send(Method::GET, "/healthz", None, None, &[]).await
    }

    /// `GET /readyz`
    pub async fn readyz(&self) -> Resp {
        self.send(Method::GET, "/readyz", None, None, &[]).await
    }

    /// `GET /metrics`
    pub async fn metrics(&self) -> Resp {
        self.send(Method::GET, "/metrics", None, None, &[]).await
    }

    /// `GET /openapi.json`
    pub async fn openapi(&self) -> Resp {
        self.send(Method::GET, "/openapi.json", None, None, &[]).await
    }

    // ---------- compositions ----------

    /// Creates a sale through the admin API and returns the event id. `spec`:
    /// `{"event": {...}, "ticket_types": [{...}], "quotas": [{name, capacity, ticket_type_ids}], "open": bool}`.
    pub async fn create_sale(&self, spec: &Value) -> String {
        let id = self.create_event(&spec["event"]).await.expect_id(201);
        for tt in spec["ticket_types"].as_array().into_iter().flatten() {
            self.create_ticket_type(&id, tt).await.expect(201);
        }
        for q in spec["quotas"].as_array().into_iter().flatten() {
            self.create_quota(&id, q).await.expect(201);
        }
        if spec["open"].as_bool().unwrap_or(true) {
            self.open(&id).await.expect(200);
        }
        id
    }

    /// A sale of `capacity` tickets of one type (id 0, 10.00 EUR), open; `event` adds to or
    /// overrides the event's fields.
    pub async fn simple_sale(&self, capacity: u32, event: Value) -> String {
        let mut ev = json!({"name": "Simple sale", "currency": "EUR"});
        if let (Some(base), Some(extra)) = (ev.as_object_mut(), event.as_object()) {
            base.extend(extra.clone());
        }
        self.create_sale(&json!({
            "event": ev,
            "ticket_types": [{"name": "General", "price_minor": 1000}],
            "quotas": [{"name": "All", "capacity": capacity, "ticket_type_ids": [0]}],
        }))
        .await
    }

    /// The sale's stats (asserting `200`).
    pub async fn stats(&self, event: &str) -> Value {
        self.get_stats(event).await.expect(200).clone()
    }

    /// Availability per ticket type on the public sale page (asserting `200`).
    pub async fn available(&self, event: &str) -> Vec<u64> {
        available(self.get_sale(event).await.expect(200))
    }

    /// The whole event feed, page by page.
    pub async fn feed(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = "0".to_string();
        loop {
            let r = self.feed_page(&after, 1000).await;
            let page = r.expect(200);
            let events = page["events"].as_array().expect("events");
            if events.is_empty() {
                return out;
            }
            out.extend(events.iter().cloned());
            after = page["next_cursor"].as_str().expect("next_cursor").to_string();
        }
    }

    /// Hold, check out and pay `quantity` tickets of type 0; returns the paid order's view.
    pub async fn buy(&self, token: &str, event: &str, quantity: u32) -> Value {
        let hold = self.place_hold(token, event, &items(0, quantity), None).await;
        let hold = hold.expect_id(201);
        let order = self.checkout(token, &hold, None).await.expect_id(201);
        let paid = self.pay(token, &order).await;
        assert_eq!(paid.expect(200)["state"], "paid");
        paid.json
    }

    /// (method, path) of every operation in `/openapi.json`, lower-case methods.
    pub async fn documented_routes(&self) -> BTreeSet<(String, String)> {
        let doc = self.openapi().await;
        let doc = doc.expect(200);
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    out.insert((method.clone(), path.clone()));
                }
            }
        }
        out
    }
}

/// `{"items": [{"ticket_type_id": ticket_type, "quantity": quantity}]}`
pub fn items(ticket_type: u32, quantity: u32) -> Value {
    json!({"items": [{"ticket_type_id": ticket_type, "quantity": quantity}]})
}

/// Availability per ticket type in a sale view.
pub fn available(event: &Value) -> Vec<u64> {
    event["ticket_types"]
        .as_array()
        .expect("ticket_types")
        .iter()
        .map(|t| t["available"].as_u64().expect("available"))
        .collect()
}

/// The sum of ticket quantities in a hold or order view.
pub fn quantity(view: &Value) -> u64 {
    view["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["quantity"].as_u64().expect("quantity"))
        .sum()
}

/// The ticket codes of an order view.
pub fn ticket_codes(order: &Value) -> Vec<String> {
    order["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| t["code"].as_str().expect("code").to_string())
        .collect()
}

/// A running application on a data directory of its own.
pub struct TestApp {
    api: Api,
    engine: Option<Arc<Engine>>,
    manual: Option<Arc<ManualClock>>,
    running: Option<RunningApp>,
    options: AppOptions,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Builds and starts the application, and waits until it has recovered (`/readyz` is 200).
pub async fn spawn_app(options: AppOptions) -> TestApp {
    let dir = match &options.data_dir_in {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("tempdir");
    let manual = options
        .manual_clock
        .then(|| Arc::new(ManualClock::new(start_of_this_second())));
    let clock: Arc<dyn Clock> = match &manual {
        Some(m) => m.clone(),
        None => Arc::new(SystemClock),
    };
    let (running, engine) = start(dir.path(), &options, clock.clone()).await;
    TestApp {
        api: Api::new(running.local_addr(), clock, options.codes.clone()),
        engine: Some(engine),
        manual,
        running: Some(running),
        options,
        dir,
    }
}

async fn start(data_dir: &Path, options: &AppOptions, clock: Arc<dyn Clock>) -> (RunningApp, Arc<Engine>) {
    let config = AppConfig {
        listen: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        secrets: secrets(),
        engine: options.engine(),
        api: options.settings(),
        clock,
        prometheus: options.metrics.then(prometheus),
        providers: options.providers.clone(),
        saga: options.saga.clone(),
    };
    let app = Application::build(config).await.expect("bind");
    let mut running = app.start();
    let engine = running.ready().await.expect("recovery");
    (running, engine)
}

impl TestApp {
    /// The app's data directory (where `taquilla keys` would write).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The running application's shared state.
    pub fn state(&self) -> &AppState {
        self.running.as_ref().expect("running").state()
    }

    /// The address it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.as_ref().expect("running").local_addr()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        self.engine.as_ref().expect("running")
    }

    fn manual(&self) -> &ManualClock {
        self.manual.as_deref().expect("an app with AppOptions::manual_clock")
    }

    /// The data directory's namespace at the payment providers (drawn at the first start).
    pub fn payment_namespace(&self) -> String {
        let path = self.dir.path().join(taquilla_followers::saga::NAMESPACE_FILE);
        std::fs::read_to_string(path)
            .expect("the namespace file")
            .trim()
            .to_string()
    }

    /// Moves the manual clock forward. Nothing expires until the engine looks at the clock:
    /// [`TestApp::tick`], a command, or the shard's own idle wake-up (every 250 ms at most).
    pub fn advance(&self, d: Duration) {
        self.manual().advance_ms(d.as_millis() as i64);
    }

    /// Makes the engine run every deadline due on its clock now, and waits until it has.
    pub async fn tick(&self) {
        self.engine().tick().await.expect("tick");
    }

    /// Shuts down gracefully (in-flight requests finished, queues drained durably, snapshot)
    /// and starts again on the same data directory, clock and recorder: recovery replays the
    /// log and checks every invariant. The app listens on a new port afterwards.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (running, engine) = start(self.dir.path(), &self.options, self.api.clock.clone()).await;
        self.api.base = format!("http://{}", running.local_addr());
        self.running = Some(running);
        self.engine = Some(engine);
    }

    /// Shuts down gracefully and releases the data directory.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("graceful shutdown");
        }
        // The last handle: dropping it releases the data directory's lock.
        self.engine = None;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The server task (and its handle on the engine) lives until the runtime ends; stop
        // the engine now, while its data directory still exists.
        if let Some(engine) = &self.engine {
            engine.stop();
        }
    }
}

/// An application serving before recovery has finished: an [`AppState`] without an engine
/// behind the real router. [`UnreadyApp::recover`] opens the engine and hands it over.
pub struct UnreadyApp {
    api: Api,
    pub state: AppState,
    server: JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for UnreadyApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

pub async fn spawn_unready_app(codes: &Codes) -> UnreadyApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = taquilla_api::keys::KeyStore::open(dir.path(), ADMIN_TOKEN, BUYER_SECRET.as_bytes()).expect("keys");
    let state = AppState::new(
        secrets(),
        ApiSettings::default(),
        clock.clone(),
        None,
        Providers::default(),
        Arc::new(keys),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let app = taquilla_api::app(state.clone());
    let server = tokio::spawn(async move {
        let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
        axum::serve(listener, service).await.expect("serve");
    });
    UnreadyApp {
        api: Api::new(addr, clock, codes.clone()),
        state,
        server,
        dir,
    }
}

impl UnreadyApp {
    /// Recovers the engine on the app's data directory and marks the app ready.
    pub async fn recover(&self) -> Arc<Engine> {
        let dir = self.dir.path().to_path_buf();
        let engine = tokio::task::spawn_blocking(move || {
            Engine::open(&dir, AppOptions::default().engine(), Arc::new(SystemClock))
        })
        .await
        .expect("recovery task")
        .expect("recovery");
        let engine = Arc::new(engine);
        self.state.set_engine(engine.clone());
        engine
    }
}

impl Drop for UnreadyApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Ok(engine) = self.state.engine() {
            engine.stop();
        }
    }
}
