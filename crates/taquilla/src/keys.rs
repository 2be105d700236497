//! `taquilla keys` (admin API keys) and `taquilla buyer-keys` (buyer-token signing keys):
//! change `<data-dir>/keys.json` directly, with the server running or not. A running server
//! sees the change at its next admin request, and within `taquilla_api::keys::KEYS_POLL` in
//! any case (see `taquilla_api::keys`).

use std::path::PathBuf;

use anyhow::Context;
use taquilla_api::keys::{Scope, api_keys, buyer, file};
use taquilla_domain::Timestamp;
use taquilla_engine::{Clock, SystemClock};

#[derive(clap::Subcommand)]
pub enum KeysCmd {
    /// Create an API key; prints it once (only its SHA-256 is kept).
    Create {
        #[command(flatten)]
        dir: DataDir,
        /// Who or what holds the key, e.g. "door scanner 3".
        #[arg(long)]
        name: String,
        /// Comma-separated: admin (everything), door (check-in, stats), reporting (stats,
        /// orders, feed).
        #[arg(long, value_delimiter = ',', required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
    /// List the API keys (never the keys themselves).
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Revoke an API key by id; refused by the server from its next admin request on.
    Revoke {
        #[command(flatten)]
        dir: DataDir,
        /// The key id (`ak_…`, the part of the key before the dot).
        key_id: String,
    },
}

#[derive(clap::Subcommand)]
pub enum BuyerKeysCmd {
    /// Add a signing key: it signs every buyer token minted from now on; older keys keep
    /// verifying their tokens. Prints its key id and secret (the HMAC key).
    Rotate {
        #[command(flatten)]
        dir: DataDir,
    },
    /// List the signing keys (never their secrets) and which one signs.
    List {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Retire a signing key: tokens that name it are refused from now on.
    Retire {
        #[command(flatten)]
        dir: DataDir,
        /// The key id (0 is the bootstrap --buyer-secret).
        kid: u32,
    },
}

#[derive(clap::Args)]
pub struct DataDir {
    /// The server's data directory [default: ./data].
    #[arg(long, env = "TAQUILLA_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

impl DataDir {
    /// The keys of the data directory (which must exist: a typo must not list nothing).
    fn read(&self) -> anyhow::Result<file::KeysFile> {
        anyhow::ensure!(self.data_dir.is_dir(), "{} is not a directory", self.data_dir.display());
        file::read(&self.data_dir).context("reading the keys")
    }
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s.trim()).ok_or_else(|| format!("unknown scope {s:?}: admin, door or reporting"))
}

fn now() -> Timestamp {
    SystemClock.now()
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), taquilla_api::time::rfc3339)
}

fn scopes(s: &[Scope]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

pub fn run_keys(cmd: KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Create { dir, name, scopes: s } => {
            let (record, key) = api_keys::create(&dir.data_dir, &name, &s, now())?;
            println!("id:     {}", record.id);
            println!("scopes: {}", scopes(&record.scopes));
            println!("key:    {key}");
            println!("(shown once: only its SHA-256 is kept)");
        }
        KeysCmd::List { dir } => {
            let file = dir.read()?;
            println!(
                "{:<20} {:<24} {:<24} {:<24} name",
                "id", "scopes", "created_at", "revoked_at"
            );
            for k in &file.api_keys {
                println!(
                    "{:<20} {:<24} {:<24} {:<24} {}",
                    k.id,
                    scopes(&k.scopes),
                    time(Some(k.created_at)),
                    time(k.revoked_at),
                    k.name
                );
            }
        }
        KeysCmd::Revoke { dir, key_id } => {
            let record = api_keys::revoke(&dir.data_dir, &key_id, now())?;
            println!("revoked {} at {}", record.id, time(record.revoked_at));
        }
    }
    Ok(())
}

pub fn run_buyer_keys(cmd: BuyerKeysCmd) -> anyhow::Result<()> {
    match cmd {
        BuyerKeysCmd::Rotate { dir } => {
            let (kid, secret) = buyer::rotate(&dir.data_dir, now())?;
            println!("kid:    {kid}");
            println!("secret: {secret}");
            println!("(signs new tokens from now on; tokens of older keys stay valid until they expire)");
        }
        BuyerKeysCmd::List { dir } => {
            let file = dir.read()?;
            println!("{:<6} {:<24} {:<24} signing", "kid", "created_at", "retired_at");
            for k in buyer::list(&file) {
                let created = if k.kid == 0 {
                    "(--buyer-secret)".into()
                } else {
                    time(k.created_at)
                };
                let signing = if k.signing { "yes" } else { "" };
                println!("{:<6} {:<24} {:<24} {signing}", k.kid, created, time(k.retired_at));
            }
        }
        BuyerKeysCmd::Retire { dir, kid } => {
            let k = buyer::retire(&dir.data_dir, kid, now())?;
            println!("retired buyer key {} at {}", k.kid, time(k.retired_at));
        }
    }
    Ok(())
}
