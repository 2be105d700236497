//! Test support for the tests that need the real process: spawns `taquilla serve` on port 0
//! on a data directory the test keeps (for restarts), reads the URL from the first line of
//! stdout, waits for `/readyz` with a deadline, and kills the process on drop (or signals it).
//! Requests go through `reqwest`; buyer tokens are minted with the shared secret (the
//! documented token format).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use taquilla_domain::BuyerId;
pub use taquilla_os::process::Signal;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const BUYER_SECRET: &str = "test-buyer-secret-0123456789";
/// How long a server may take to start (debug build, recovery of a small log, busy CI).
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running `taquilla serve`.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub http: reqwest::Client,
}

/// An answer, with the body parsed as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// Asserts `status` and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        &self.json
    }
}

fn spawn_child(data_dir: &Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_taquilla"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(["--admin-token", ADMIN_TOKEN, "--buyer-secret", BUYER_SECRET])
        .args(["--worker-threads", "2"])
        // Bursts from one address and buyer: these tests are not about the rate limits.
        .args(["--rate-limit-address", "off", "--rate-limit-buyer", "off"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn taquilla serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    // The server prints a banner and nothing else; keep draining so that it can never block
    // on (or die from) a closed pipe.
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        for _ in lines.map_while(Result::ok) {}
    });
    let first = match rx.recv_timeout(START_DEADLINE) {
        Ok(Some(line)) => line,
        other => {
            let _ = child.kill();
            panic!(
                "taquilla serve printed no banner: {other:?} (status {:?})",
                child.wait()
            );
        }
    };
    let url = first
        .strip_prefix("taquilla listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .trim()
        .to_string();
    (child, url)
}

impl Server {
    /// A server on `data_dir`, which the caller keeps (for restarts).
    pub async fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        let (child, url) = spawn_child(data_dir, args);
        let server = Server {
            child: Some(child),
            url,
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .expect("client"),
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "/readyz not 200 within {START_DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` and waits (with a deadline) for the process to exit.
    pub fn signal_and_wait(&mut self, signal: Signal) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        // Our own child, not reaped yet: its pid cannot have been reused.
        taquilla_os::process::send_signal(c.id(), signal).unwrap_or_else(|e| panic!("kill({signal}): {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the server did not exit within 30 s of signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Sends a request; `body` as JSON when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = bearer {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        into_resp(rb.send().await.expect("request failed")).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        self.send(method, path, Some(ADMIN_TOKEN), body, &[]).await
    }

    pub async fn buyer(&self, token: &str, method: Method, path: &str, body: Option<&Value>) -> Resp {
        self.send(method, path, Some(token), body, &[]).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, None, &[]).await
    }

    /// Creates a sale through the admin API and returns the event id. `spec`:
    /// `{"event": {...}, "ticket_types": [{...}], "quotas": [{name, capacity, ticket_type_ids}], "open": bool}`.
    pub async fn create_sale(&self, spec: &Value) -> String {
        let ev = self.admin(Method::POST, "/v1/admin/events", Some(&spec["event"])).await;
        let id = ev.expect(201)["id"].as_str().expect("event id").to_string();
        for tt in spec["ticket_types"].as_array().into_iter().flatten() {
            self.admin(Method::POST, &format!("/v1/admin/events/{id}/ticket-types"), Some(tt))
                .await
                .expect(201);
        }
        for q in spec["quotas"].as_array().into_iter().flatten() {
            self.admin(Method::POST, &format!("/v1/admin/events/{id}/quotas"), Some(q))
                .await
                .expect(201);
        }
        if spec["open"].as_bool().unwrap_or(true) {
            self.admin(Method::POST, &format!("/v1/admin/events/{id}/open"), None)
                .await
                .expect(200);
        }
        id
    }

    /// A sale of `capacity` tickets of one type (id 0, 10.00 EUR), open.
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

    pub async fn stats(&self, event: &str) -> Value {
        self.admin(Method::GET, &format!("/v1/admin/events/{event}/stats"), None)
            .await
            .expect(200)
            .clone()
    }

    /// The whole event feed, page by page.
    pub async fn feed(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = "0".to_string();
        loop {
            let r = self
                .admin(Method::GET, &format!("/v1/admin/feed?after={after}&limit=1000"), None)
                .await;
            let page = r.expect(200);
            let events = page["events"].as_array().expect("events");
            if events.is_empty() {
                return out;
            }
            out.extend(events.iter().cloned());
            after = page["next_cursor"].as_str().expect("next_cursor").to_string();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
pub async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let text = r.text().await.expect("read body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, text, json }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A buyer token valid for an hour, minted with the shared secret (the documented format).
pub fn buyer_token(buyer: &str) -> String {
    buyer_token_expiring(buyer, now_secs() + 3600)
}

pub fn buyer_token_expiring(buyer: &str, expires_at_secs: i64) -> String {
    let id = BuyerId::parse(buyer).expect("valid buyer id");
    taquilla_api::mint_buyer_token(BUYER_SECRET.as_bytes(), &id, expires_at_secs)
}

/// Polls `check` until it returns `Some`, or panics after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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
