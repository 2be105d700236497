//! `<data-dir>/keys.json`: the admin API keys (hashed) and the buyer-token signing keys, as one
//! small JSON file (mode 0600) that the server and the `taquilla keys` / `buyer-keys` commands
//! both change. A change is a read-modify-write under an exclusive `flock` on
//! `<data-dir>/keys.lock` (so the API and the CLI never lose each other's change), written
//! with [`replace_file`] (so a reader, or a crash, sees the old file or the new one, never a
//! mix). Readers take no lock.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use taquilla_domain::Timestamp;
use taquilla_log::fsutil::replace_file;

use super::scope::Scope;
use crate::limits::{API_KEYS_ACTIVE_MAX, API_KEYS_REVOKED_KEPT, BUYER_KEYS_ACTIVE_MAX, BUYER_KEYS_RETIRED_KEPT};

/// The file's name in the data directory.
pub const KEYS_FILE: &str = "keys.json";
/// The lock file writers take (never read; its content is empty).
const LOCK_FILE: &str = "keys.lock";
/// Owner read and write only: the file holds buyer signing secrets.
const KEYS_FILE_MODE: u32 = 0o600;
/// The format written; a file of a newer format is refused rather than misread.
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a keys file this version reads: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("no {0}")]
    NotFound(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    Invalid(String),
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    pub version: u32,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyRecord>,
    #[serde(default)]
    pub buyer_keys: Vec<BuyerKeyRecord>,
    /// The id the next buyer signing key gets: ids are never reused, so a token can only ever
    /// name the key that signed it.
    pub next_buyer_kid: u32,
}

impl Default for KeysFile {
    fn default() -> Self {
        KeysFile {
            version: FORMAT_VERSION,
            api_keys: Vec::new(),
            buyer_keys: Vec::new(),
            next_buyer_kid: 1,
        }
    }
}

/// An admin API key as stored: never the key itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Hex SHA-256 of the whole key (`<id>.<secret>`).
    pub sha256: String,
    #[serde(with = "ms")]
    pub created_at: Timestamp,
    #[serde(default, with = "opt_ms", skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

/// A buyer-token signing key. Key id 0 is the bootstrap secret (`--buyer-secret`), which is
/// not stored here; it has a record only once retired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyerKeyRecord {
    pub kid: u32,
    /// The HMAC key (its UTF-8 bytes); absent for key id 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, with = "opt_ms", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(default, with = "opt_ms", skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<Timestamp>,
}

impl KeysFile {
    /// Parses the file's bytes; empty bytes (no file yet) are the empty file.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<KeysFile, KeysError> {
        if bytes.is_empty() {
            return Ok(KeysFile::default());
        }
        let corrupt = |reason: String| KeysError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file: KeysFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != FORMAT_VERSION {
            return Err(corrupt(format!("format version {}", file.version)));
        }
        file.check().map_err(corrupt)?;
        Ok(file)
    }

    /// What every file written or read satisfies.
    fn check(&self) -> Result<(), String> {
        let active = self.api_keys.iter().filter(|k| k.revoked_at.is_none()).count();
        if active > API_KEYS_ACTIVE_MAX || self.api_keys.len() > API_KEYS_ACTIVE_MAX + API_KEYS_REVOKED_KEPT {
            return Err("too many API keys".into());
        }
        if self.buyer_keys.len() > BUYER_KEYS_ACTIVE_MAX + BUYER_KEYS_RETIRED_KEPT + 1 {
            return Err("too many buyer keys".into());
        }
        for k in &self.buyer_keys {
            if k.kid >= self.next_buyer_kid && k.kid != 0 {
                return Err(format!("buyer key {} is not below next_buyer_kid", k.kid));
            }
            if (k.kid == 0) != k.secret.is_none() {
                return Err(format!("buyer key {}: only key 0 has no secret", k.kid));
            }
        }
        Ok(())
    }

    /// Drops the oldest revoked API keys and retired buyer keys beyond what is kept for
    /// listing; they authenticate nothing, and their ids are never reused.
    fn prune(&mut self) {
        let revoked = self.api_keys.iter().filter(|k| k.revoked_at.is_some()).count();
        let mut drop_revoked = revoked.saturating_sub(API_KEYS_REVOKED_KEPT);
        self.api_keys.retain(|k| {
            let gone = drop_revoked > 0 && k.revoked_at.is_some();
            drop_revoked -= usize::from(gone);
            !gone
        });
        let retired = self.buyer_keys.iter().filter(|k| k.retired_at.is_some()).count();
        let mut drop_retired = retired.saturating_sub(BUYER_KEYS_RETIRED_KEPT);
        // Key 0's record says the bootstrap secret is retired: it is never dropped.
        self.buyer_keys.retain(|k| {
            let gone = drop_retired > 0 && k.retired_at.is_some() && k.kid != 0;
            drop_retired -= usize::from(gone);
            !gone
        });
    }
}

/// The keys file of `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEYS_FILE)
}

/// The file's bytes; empty when there is no file yet.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, KeysError> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(KeysError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The keys of `data_dir` as they are on disk now.
pub fn read(data_dir: &Path) -> Result<KeysFile, KeysError> {
    let path = path(data_dir);
    KeysFile::parse(&path, &read_bytes(&path)?)
}

/// Changes the keys of `data_dir`: `change` runs on the current file under the writers' lock,
/// and what it leaves is written atomically and durably before this returns. Nothing is
/// written when `change` fails.
pub fn update<T>(data_dir: &Path, change: impl FnOnce(&mut KeysFile) -> Result<T, KeysError>) -> Result<T, KeysError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeysError::Io { path, source }
    };
    if !data_dir.is_dir() {
        return Err(KeysError::Invalid(format!("{} is not a directory", data_dir.display())));
    }
    let lock_path = data_dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(KEYS_FILE_MODE)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    // Released when `lock` is dropped (also if this thread panics).
    lock.lock().map_err(io_err(&lock_path))?;
    let mut file = read(data_dir)?;
    let out = change(&mut file)?;
    file.prune();
    let path = path(data_dir);
    if let Err(reason) = file.check() {
        return Err(KeysError::Corrupt { path, reason });
    }
    let bytes = serde_json::to_vec_pretty(&file).unwrap_or_else(|_| unreachable!("plain data serializes"));
    replace_file(&path, &bytes, KEYS_FILE_MODE).map_err(io_err(&path))?;
    Ok(out)
}

/// Times in the file: RFC 3339, like the API.
mod ms {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use taquilla_domain::Timestamp;

    use crate::time::{parse_rfc3339, rfc3339};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339(&s).ok_or_else(|| D::Error::custom("expected an RFC 3339 time"))
    }
}

mod opt_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use taquilla_domain::Timestamp;

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::ms::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::ms")] Timestamp);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_empty_and_updates_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), KeysFile::default());
        update(dir.path(), |f| {
            f.buyer_keys.push(BuyerKeyRecord {
                kid: 1,
                secret: Some("s".repeat(43)),
                created_at: Some(Timestamp(1_000)),
                retired_at: None,
            });
            f.next_buyer_kid = 2;
            Ok(())
        })
        .unwrap();
        let f = read(dir.path()).unwrap();
        assert_eq!(f.buyer_keys.len(), 1);
        let meta = std::fs::metadata(path(dir.path())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // A failed change writes nothing.
        let e = update(dir.path(), |f| {
            f.buyer_keys.clear();
            Err::<(), _>(KeysError::Invalid("no".into()))
        });
        assert!(e.is_err());
        assert_eq!(read(dir.path()).unwrap(), f);
    }

    #[test]
    fn damaged_or_newer_files_are_refused_not_misread() {
        let p = Path::new("keys.json");
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"version":2,"next_buyer_kid":1}"#,
            br#"{"version":1,"next_buyer_kid":1,"x":1}"#,
        ] {
            assert!(
                matches!(KeysFile::parse(p, bad), Err(KeysError::Corrupt { .. })),
                "{bad:?}"
            );
        }
        let reused = br#"{"version":1,"next_buyer_kid":1,"buyer_keys":[{"kid":1,"secret":"x"}]}"#;
        assert!(KeysFile::parse(p, reused).is_err());
    }
}
