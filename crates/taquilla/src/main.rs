//! The `taquilla` binary: the command line over the libraries. `anyhow` lives only here.

mod crash_workload;
mod keys;
mod serve;
mod settings;

/// mimalloc rather than the system allocator: the request path allocates small, short-lived
/// buffers on several threads, where glibc's malloc showed up large in server profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "taquilla", version, about = "A high-frequency ticket-selling engine")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP server on the embedded, durable log.
    Serve(Box<serve::Args>),
    /// Admin API keys in the data directory (works while the server runs).
    Keys {
        #[command(subcommand)]
        cmd: keys::KeysCmd,
    },
    /// Buyer-token signing keys in the data directory (works while the server runs).
    BuyerKeys {
        #[command(subcommand)]
        cmd: keys::BuyerKeysCmd,
    },
    /// Benchmarks that print figures (release build).
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
    /// Test tool: applies random commands to a data directory and prints each acknowledged one
    /// (used by the crash tests, which kill it with SIGKILL).
    #[command(hide = true)]
    CrashWorkload(crash_workload::Args),
}

#[derive(Subcommand)]
enum BenchCmd {
    /// The engine alone, in process, durable group commit: holds/s and replay events/s.
    Engine {
        /// Holds per scenario.
        #[arg(long, default_value_t = 2_000_000)]
        holds: u64,
        /// Scenarios: sales the holds are spread over, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,64")]
        #[arg(long = "sales")]
        sale_counts: Vec<usize>,
        /// Commands per submitted batch.
        #[arg(long, default_value_t = 4096)]
        submit_batch: usize,
        /// Batches queued at once.
        #[arg(long, default_value_t = 4)]
        in_flight: usize,
        /// Shard writer threads.
        #[arg(long, default_value_t = 1)]
        shards: usize,
        /// Distinct buyers the holds cycle through.
        #[arg(long, default_value_t = 1_000_000)]
        buyers: u64,
        /// Pin the whole process to these cores, e.g. "0" or "0-1".
        #[arg(long)]
        cpu: Option<String>,
        /// Directory for the temporary data directories (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The flash sale over HTTP: a sale, tens of thousands of buyers, the ceiling of the same
    /// server, then an audit of the outcome through the admin API and the event feed.
    /// Exits non-zero when the audit fails.
    FlashSale(Box<taquilla_bench::flash_sale::Args>),
    /// One buyer holds and releases over keep-alive HTTP, over and over, and the server's RSS
    /// is printed every so many cycles: after warm-up the curve must be flat.
    Churn(taquilla_bench::churn::Args),
    /// The server memory of a sale's waiting room per queued buyer: joins that many buyers
    /// and prints the RSS growth per buyer, the join rate and one status read's time.
    RoomMemory {
        #[arg(long, default_value_t = 1_000_000)]
        buyers: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Hold latency on a sale of many holds while its snapshot is written: open-loop single
    /// holds, timed from when each was due to its durable reply.
    SnapshotStall {
        /// Active holds in the sale before the timed phase.
        #[arg(long, default_value_t = 2_000_000)]
        holds: u64,
        /// Holds per second in the timed phase.
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        /// Length of the timed phase (the snapshot falls due after one second of it).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Pin the whole process to these cores, e.g. "0" or "0-1".
        #[arg(long)]
        cpu: Option<String>,
        /// Directory for the temporary data directory (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Serve(args) => {
            init_tracing("info");
            serve::run(*args)
        }
        Cmd::Keys { cmd } => {
            init_tracing("warn");
            keys::run_keys(cmd)
        }
        Cmd::BuyerKeys { cmd } => {
            init_tracing("warn");
            keys::run_buyer_keys(cmd)
        }
        Cmd::Bench { which } => match which {
            BenchCmd::Engine {
                holds,
                sale_counts,
                submit_batch,
                in_flight,
                shards,
                buyers,
                cpu,
                dir,
                json,
            } => {
                init_tracing("warn");
                if let Some(cpu) = cpu {
                    let cores = taquilla_os::affinity::parse_cores(&cpu).map_err(anyhow::Error::msg)?;
                    taquilla_os::affinity::pin_process(&cores).context("pinning to cores")?;
                }
                anyhow::ensure!(
                    (1..=taquilla_engine::SUBMIT_BATCH_MAX).contains(&submit_batch),
                    "--submit-batch must be 1..=8192"
                );
                anyhow::ensure!(
                    in_flight >= 1 && shards >= 1 && holds >= 1,
                    "--in-flight, --shards and --holds must be at least 1"
                );
                let args = taquilla_bench::engine::Args {
                    holds,
                    sale_counts,
                    submit_batch,
                    in_flight,
                    shards,
                    buyers,
                    dir,
                };
                let mut progress = |line: &str| {
                    if !json {
                        println!("{line}");
                    }
                };
                let report = taquilla_bench::engine::run(&args, &mut progress)?;
                if json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    println!(
                        "\nholds/s (1st scenario, durable): {:.0}\nreplay events/s: {:.0}\nrestart with snapshots: {:.0} ms",
                        report.holds_per_sec, report.replay_events_per_sec, report.restart_with_snapshots_ms
                    );
                }
                Ok(())
            }
            BenchCmd::Churn(args) => {
                init_tracing("warn");
                println!("{:>10}  {:>10}  {:>10}", "cycles", "rss_mib", "cycles/s");
                let mut print = |s: taquilla_bench::churn::Sample| {
                    let mib = s.rss_bytes as f64 / (1024.0 * 1024.0);
                    println!("{:>10}  {:>10.1}  {:>10.0}", s.cycles, mib, s.cycles_per_sec);
                };
                let samples = taquilla_bench::churn::run(&args, &mut print)?;
                if let (Some(first), Some(last)) = (samples.get(1), samples.last()) {
                    let cycles = (last.cycles - first.cycles).max(1) as f64;
                    let growth = last.rss_bytes as f64 - first.rss_bytes as f64;
                    println!("after warm-up: {:+.1} bytes of RSS per cycle", growth / cycles);
                }
                Ok(())
            }
            BenchCmd::RoomMemory { buyers, json } => {
                let r = taquilla_bench::room_memory::run(buyers)?;
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "{} buyers queued: RSS {:.1} -> {:.1} MiB, {:.0} bytes per queued buyer; {:.0} joins/s; status read {:.1} us",
                        r.buyers,
                        r.rss_before_bytes as f64 / 1048576.0,
                        r.rss_after_bytes as f64 / 1048576.0,
                        r.server_bytes_per_queued_buyer,
                        r.joins_per_sec,
                        r.status_read_us
                    );
                }
                Ok(())
            }
            BenchCmd::SnapshotStall {
                holds,
                rate,
                seconds,
                cpu,
                dir,
            } => {
                init_tracing("warn");
                if let Some(cpu) = cpu {
                    let cores = taquilla_os::affinity::parse_cores(&cpu).map_err(anyhow::Error::msg)?;
                    taquilla_os::affinity::pin_process(&cores).context("pinning to cores")?;
                }
                let args = taquilla_bench::snapshot_stall::Args {
                    holds,
                    rate,
                    seconds,
                    dir,
                };
                let r = taquilla_bench::snapshot_stall::run(&args)?;
                println!("{}", serde_json::to_string(&r)?);
                Ok(())
            }
            BenchCmd::FlashSale(args) => {
                init_tracing("warn");
                taquilla_os::allocator::keep_freed_memory();
                let report = taquilla_bench::flash_sale::run(&args)?;
                if args.json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    print!("{}", taquilla_bench::flash_sale::report::render(&report));
                }
                anyhow::ensure!(report.passed, "the flash sale did not pass its audit");
                Ok(())
            }
        },
        Cmd::CrashWorkload(args) => {
            init_tracing("warn");
            crash_workload::run(args)
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
