//! Keys: the admin API keys (named, scoped, stored hashed) and the buyer-token signing keys
//! (by key id), kept in one file of the data directory, `keys.json` ([`file`]), which the
//! running server and the `taquilla keys` / `taquilla buyer-keys` commands both change.
//!
//! **Why a file of its own, not events in the log.** The CLI must work while the server
//! runs, and the server holds the log's data-directory lock for its lifetime: only it can
//! append. A small file changed under its own advisory lock (read-modify-write) and replaced
//! atomically can be changed by either, and is durable when the change is acknowledged. Keys
//! are configuration, not sales history: replaying the log never needs them.
//!
//! **How a change reaches the server.** [`KeyStore`] holds the file's keys in memory. A change
//! made through the admin API is loaded before the API answers. A change made by the CLI is
//! seen (a) by the next admin request, which first compares the file's identity (one `stat`:
//! inode, size, modification and change times) with the one it loaded — so a revoked key is
//! refused at once — (b) by the next buyer request naming a key id newer than any loaded (a
//! rotation), and (c) in any case within [`KEYS_POLL`], by a task that re-reads the file and
//! compares its bytes (which also catches what `stat` cannot: two replacements within one
//! timestamp tick reusing an inode).

pub mod api_keys;
pub mod buyer;
pub mod file;
mod scope;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use subtle::ConstantTimeEq;
use taquilla_domain::{BuyerId, Timestamp};

pub use api_keys::{KeyHolder, Refused};
pub use file::{ApiKeyRecord, KeysError, KeysFile};
pub use scope::{Scope, Scopes};

use crate::auth::{self, HmacSha256};
pub use crate::limits::KEYS_POLL;

/// The name the bootstrap admin token (`--admin-token`) goes by in logs and metrics.
pub const BOOTSTRAP_KEY_ID: &str = "bootstrap";

/// The keys the server checks, loaded from the keys file and the bootstrap secrets.
struct Keys {
    api: api_keys::ApiKeyTable,
    ring: buyer::BuyerRing,
}

/// What was loaded last: the file's identity and bytes.
#[derive(Default)]
struct Seen {
    identity: Option<Identity>,
    bytes: Vec<u8>,
}

/// What `stat` says about the file; any change means it was replaced or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn identity(path: &Path) -> Option<Identity> {
    let m = std::fs::metadata(path).ok()?;
    Some(Identity {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// The server's view of the keys (see the module documentation).
pub struct KeyStore {
    data_dir: PathBuf,
    path: PathBuf,
    bootstrap_admin: Box<[u8]>,
    bootstrap_buyer: Box<[u8]>,
    seen: Mutex<Seen>,
    current: RwLock<Keys>,
}

impl KeyStore {
    /// Loads the keys of `data_dir`. A keys file that cannot be read is an error: starting
    /// without keys that were revoked, or with none of them, would both be wrong.
    pub fn open(data_dir: &Path, admin_token: &str, buyer_secret: &[u8]) -> Result<KeyStore, KeysError> {
        let path = file::path(data_dir);
        let identity = identity(&path);
        let bytes = file::read_bytes(&path)?;
        let parsed = KeysFile::parse(&path, &bytes)?;
        let store = KeyStore {
            data_dir: data_dir.to_path_buf(),
            current: RwLock::new(Keys {
                api: api_keys::ApiKeyTable::new(&parsed),
                ring: buyer::BuyerRing::new(buyer_secret, &parsed),
            }),
            path,
            bootstrap_admin: admin_token.as_bytes().into(),
            bootstrap_buyer: buyer_secret.into(),
            seen: Mutex::new(Seen { identity, bytes }),
        };
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Re-reads the file if `stat` says it changed since it was loaded.
    pub fn refresh(&self) {
        let now = identity(&self.path);
        if self.seen.lock().identity != now {
            self.reload();
        }
    }

    /// Re-reads the file and loads its keys if its bytes changed. A file that cannot be read
    /// or parsed (a hand edit gone wrong) keeps the keys loaded before, loudly.
    pub fn reload(&self) {
        let mut seen = self.seen.lock();
        // The identity is taken before the read: a change between the two is seen next time.
        let identity = identity(&self.path);
        let bytes = match file::read_bytes(&self.path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the keys file; keeping the keys loaded before");
                return;
            }
        };
        seen.identity = identity;
        if bytes == seen.bytes {
            return;
        }
        match KeysFile::parse(&self.path, &bytes) {
            Ok(parsed) => {
                let keys = Keys {
                    api: api_keys::ApiKeyTable::new(&parsed),
                    ring: buyer::BuyerRing::new(&self.bootstrap_buyer, &parsed),
                };
                *self.current.write() = keys;
                tracing::info!(
                    api_keys = parsed.api_keys.len(),
                    buyer_keys = parsed.buyer_keys.len(),
                    "keys reloaded"
                );
            }
            Err(e) => tracing::error!(error = %e, "keys file unreadable; keeping the keys loaded before"),
        }
        seen.bytes = bytes;
    }

    /// Who presents `token` on an admin route: the bootstrap admin token, or an active API key.
    pub fn authenticate_admin(&self, token: &str) -> Result<KeyHolder, Refused> {
        // Every admin request sees the file as it is now (one `stat`), the bootstrap token's
        // too: an operator who just changed a key with the CLI checks it with any admin call.
        self.refresh();
        if bool::from(token.as_bytes().ct_eq(&self.bootstrap_admin)) {
            return Ok(KeyHolder {
                key_id: BOOTSTRAP_KEY_ID.into(),
                scopes: Scopes::ADMIN,
            });
        }
        let Some(id) = api_keys::key_id_of(token) else {
            return Err(Refused::Unknown);
        };
        self.current.read().api.check(id, token)
    }

    /// Checks a buyer token against the active signing keys; returns the buyer.
    pub fn verify_buyer(&self, token: &str, now_secs: i64) -> Result<BuyerId, &'static str> {
        let parsed = auth::parse_buyer_token(token)?;
        let mac = self.mac(parsed.kid).or_else(|| {
            // A key id newer than any loaded: maybe rotated a moment ago by the CLI.
            if self.current.read().ring.may_be_newer(parsed.kid) {
                self.refresh();
                self.mac(parsed.kid)
            } else {
                None
            }
        });
        let mac = mac.ok_or("unknown or retired signing key")?;
        auth::check_buyer_token(mac, &parsed, now_secs)
    }

    fn mac(&self, kid: u32) -> Option<HmacSha256> {
        self.current.read().ring.mac(kid).cloned()
    }

    /// Signs an admission token with the newest active signing key.
    pub fn mint_admission(&self, admission: &crate::admission::Admission) -> String {
        let keys = self.current.read();
        let Some((kid, mac)) = keys.ring.signer() else {
            unreachable!("retiring the last active signing key is refused");
        };
        crate::admission::mint(kid, mac, admission)
    }

    /// Checks an admission token for `sale` and `buyer` against the active signing keys.
    pub fn verify_admission(
        &self,
        token: &str,
        sale: taquilla_domain::SaleId,
        buyer: &BuyerId,
        now: Timestamp,
    ) -> Result<crate::admission::Admission, &'static str> {
        let kid = crate::admission::kid_of(token)?;
        let mac = self.mac(kid).ok_or("unknown or retired signing key")?;
        crate::admission::check(mac, token, sale, buyer, now)
    }

    /// Mints a buyer token with the newest active signing key.
    pub fn mint_buyer_token(&self, buyer: &BuyerId, expires_at_secs: i64) -> String {
        self.refresh();
        let keys = self.current.read();
        let Some((kid, mac)) = keys.ring.signer() else {
            unreachable!("retiring the last active signing key is refused");
        };
        auth::mint_with(kid, mac, buyer, expires_at_secs)
    }

    /// Creates an API key (see [`api_keys::create`]) and loads it.
    pub fn create_api_key(
        &self,
        name: &str,
        scopes: &[Scope],
        now: Timestamp,
    ) -> Result<(ApiKeyRecord, String), KeysError> {
        let out = api_keys::create(&self.data_dir, name, scopes, now)?;
        self.reload();
        Ok(out)
    }

    /// Revokes an API key (see [`api_keys::revoke`]); refused from this moment on.
    pub fn revoke_api_key(&self, id: &str, now: Timestamp) -> Result<ApiKeyRecord, KeysError> {
        let out = api_keys::revoke(&self.data_dir, id, now)?;
        self.reload();
        Ok(out)
    }

    /// The API keys as on disk now.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, KeysError> {
        Ok(file::read(&self.data_dir)?.api_keys)
    }
}

/// Re-reads the keys file every [`KEYS_POLL`] until aborted (see the module documentation).
/// The read is a small file from the page cache, done inline.
pub async fn poll(store: Arc<KeyStore>) {
    let mut tick = tokio::time::interval(KEYS_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        store.reload();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: &str = "bootstrap-admin-token";

    fn buyer() -> BuyerId {
        BuyerId::parse("ana").unwrap()
    }

    #[test]
    fn a_change_by_another_process_is_seen_at_the_next_admin_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), ADMIN, b"buyer-secret-0").unwrap();
        assert_eq!(&*store.authenticate_admin(ADMIN).unwrap().key_id, BOOTSTRAP_KEY_ID);
        // "The CLI": written straight to the file, not through the store.
        let (rec, key) = api_keys::create(dir.path(), "door", &[Scope::Door], Timestamp(0)).unwrap();
        let holder = store.authenticate_admin(&key).unwrap();
        assert_eq!(&*holder.key_id, rec.id);
        api_keys::revoke(dir.path(), &rec.id, Timestamp(1)).unwrap();
        assert_eq!(store.authenticate_admin(&key).unwrap_err(), Refused::Revoked);
        assert_eq!(store.authenticate_admin("nope").unwrap_err(), Refused::Unknown);
    }

    #[test]
    fn a_rotation_by_another_process_verifies_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), ADMIN, b"buyer-secret-0").unwrap();
        let old = store.mint_buyer_token(&buyer(), 2_000);
        assert!(old.starts_with("v2.0."), "{old}");
        let (kid, secret) = buyer::rotate(dir.path(), Timestamp(0)).unwrap();
        let mac = auth::keyed(secret.as_bytes());
        let minted_elsewhere = auth::mint_with(kid, &mac, &buyer(), 2_000);
        assert_eq!(store.verify_buyer(&minted_elsewhere, 1_000), Ok(buyer()));
        assert_eq!(store.verify_buyer(&old, 1_000), Ok(buyer()));
        assert!(store.mint_buyer_token(&buyer(), 2_000).starts_with("v2.1."));
    }

    #[tokio::test(start_paused = true)]
    async fn the_poll_sees_a_change_within_its_interval_without_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(KeyStore::open(dir.path(), ADMIN, b"buyer-secret-0").unwrap());
        let old = store.mint_buyer_token(&buyer(), 2_000);
        let task = tokio::spawn(poll(store.clone()));
        tokio::task::yield_now().await;
        buyer::rotate(dir.path(), Timestamp(0)).unwrap();
        buyer::retire(dir.path(), 0, Timestamp(0)).unwrap();
        assert_eq!(store.verify_buyer(&old, 1_000), Ok(buyer()), "not seen before the poll");
        tokio::time::advance(KEYS_POLL).await;
        tokio::task::yield_now().await;
        assert_eq!(store.verify_buyer(&old, 1_000), Err("unknown or retired signing key"));
        task.abort();
    }

    #[test]
    fn a_damaged_file_keeps_the_keys_loaded_and_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), ADMIN, b"buyer-secret-0").unwrap();
        let (_, key) = api_keys::create(dir.path(), "r", &[Scope::Reporting], Timestamp(0)).unwrap();
        store.reload();
        std::fs::write(file::path(dir.path()), b"{not json").unwrap();
        store.reload();
        assert!(store.authenticate_admin(&key).is_ok());
        assert!(KeyStore::open(dir.path(), ADMIN, b"buyer-secret-0").is_err());
    }
}
