//! The self-hosted target: `taquilla serve` started from this same binary as a child process,
//! on a free loopback port, with a fresh data directory (durable log on), optionally pinned to
//! cores, and stopped with SIGTERM at the end (SIGKILL if it does not stop in time, or if the
//! bench exits early).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::scenario::PaymentMode;

/// How long the child may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take (it drains queues and snapshots) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const BANNER_PREFIX: &str = "taquilla listening on ";

pub struct Options<'a> {
    /// Cores for the server (`--cpu`, and one HTTP worker thread per core).
    pub cores: Option<&'a [usize]>,
    pub admin_token: &'a str,
    pub buyer_secret: &'a str,
    /// Where the temporary data directory goes (default: the system temp dir).
    pub dir: Option<&'a Path>,
    /// How the buyers pay: the server takes `test` (`--allow-test-payments`), and with
    /// `simulated` also the simulated provider (`--payment-methods test,simulated`, its
    /// defaults unless `simulated_latency_ms` is given).
    pub payments: PaymentMode,
    /// `--simulated-latency-ms` and `--simulated-decline-percent` for the server.
    pub simulated_latency_ms: Option<&'a str>,
    pub simulated_decline_percent: Option<f64>,
    /// `--saga-concurrency` for the server.
    pub saga_concurrency: Option<usize>,
    /// Whether the per-buyer rate limit stays on (as in production); off for a bench whose one
    /// buyer is the load (`bench churn`).
    pub buyer_rate_limit: bool,
}

pub struct Server {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
    stopped: bool,
}

impl Server {
    pub fn start(opts: &Options<'_>) -> anyhow::Result<Server> {
        let dir = match opts.dir {
            Some(d) => tempfile::tempdir_in(d)?,
            None => tempfile::tempdir()?,
        };
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let exe = std::env::current_exe().context("finding the taquilla binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            // Every simulated buyer comes from this one address: the per-address limit would
            // measure itself. The per-buyer limit stays on, as in production.
            .args(["--rate-limit-address", "off"])
            // Secrets through the environment: they do not show up in `ps`.
            .env("TAQUILLA_ADMIN_TOKEN", opts.admin_token)
            .env("TAQUILLA_BUYER_SECRET", opts.buyer_secret)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        match opts.payments {
            PaymentMode::Test => cmd.arg("--allow-test-payments"),
            PaymentMode::Simulated => cmd.arg("--payment-methods").arg("test,simulated"),
        };
        if let Some(latency) = opts.simulated_latency_ms {
            cmd.arg("--simulated-latency-ms").arg(latency);
        }
        if let Some(percent) = opts.simulated_decline_percent {
            cmd.arg("--simulated-decline-percent").arg(percent.to_string());
        }
        if !opts.buyer_rate_limit {
            cmd.args(["--rate-limit-buyer", "off"]);
        }
        if let Some(n) = opts.saga_concurrency {
            cmd.arg("--saga-concurrency").arg(n.to_string());
        }
        if let Some(cores) = opts.cores {
            let list: Vec<String> = cores.iter().map(|c| c.to_string()).collect();
            cmd.arg("--cpu")
                .arg(list.join(","))
                .arg("--worker-threads")
                .arg(cores.len().to_string());
        }
        let mut child = cmd.spawn().context("starting taquilla serve")?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        // The first line carries the address; the rest is drained so the child never blocks
        // on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("serve-stdout".into()).spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut reader.take(u64::MAX), &mut std::io::sink());
        })?;
        let mut server = Server {
            child,
            url: String::new(),
            dir,
            stopped: false,
        };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(l) => l,
            Err(_) => bail!(
                "taquilla serve printed no address within {START_TIMEOUT:?}; its log:\n{}",
                server.log_tail()
            ),
        };
        match line.trim().strip_prefix(BANNER_PREFIX) {
            Some(url) => server.url = url.to_string(),
            None => bail!(
                "unexpected first line from taquilla serve: {line:?}; its log:\n{}",
                server.log_tail()
            ),
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Server {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The end of the server's stderr, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }

    /// SIGTERM, then wait for a graceful exit (bounded); SIGKILL if it does not come.
    pub fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        self.stopped = true;
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // A child we have not reaped yet: its pid cannot have been reused.
        let _ = taquilla_os::process::send_signal(self.child.id(), taquilla_os::process::Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        bail!("taquilla serve did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed ({status})")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
