//! The Prometheus recorder behind `/metrics`, with the histogram buckets of every metric the
//! server records (request latency, fsync latency in seconds; commands and records per batch).
//! The recorder is process-global: install it once per process.

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: 50 µs to 10 s.
const SECONDS_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Batch-size buckets, in commands or records: 1 to the largest batch.
const BATCH_BUCKETS: [f64; 14] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

/// How often histogram samples are folded into their buckets. The exporter keeps every raw
/// sample until the next render or upkeep, and `install_recorder` runs no upkeep of its own:
/// without this, a server nobody scrapes grows by every request's samples (the churn bench
/// measured ~170 bytes per hold/release cycle).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the process's metrics recorder, starts its upkeep thread, and returns the handle
/// `/metrics` renders.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("seconds".into()), &SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Prefix("taquilla_batch".into()), &BATCH_BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep thread: histograms drain only when scraped");
    }
    Ok(handle)
}
