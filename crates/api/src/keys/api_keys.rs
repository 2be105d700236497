//! Admin API keys: `ak_<16 hex>.<43 base64url>`, the id before the dot (public: listed, logged,
//! the lookup key) and 256 random bits after it (the secret, shown once at creation).
//!
//! **Stored as a SHA-256, not a password hash.** Slow, salted hashes (Argon2, bcrypt) exist
//! to make guessing *low-entropy, human-chosen* passwords from a stolen hash expensive. These
//! keys are 256 bits from a CSPRNG: no guess list exists, and inverting SHA-256 is out of
//! reach at any hash speed. So a plain SHA-256 protects a stolen file just as well, and keeps
//! checking a key a microsecond's work on every admin request (a door scanner's check-ins)
//! instead of the tens of milliseconds a password hash is designed to cost. The id prefix
//! makes the lookup one hash-map probe, and the digest comparison is constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use std::path::Path;

use taquilla_domain::Timestamp;

use super::file::{ApiKeyRecord, KeysError, KeysFile, update};
use super::scope::{Scope, Scopes};
use crate::limits::API_KEYS_ACTIVE_MAX;

const ID_PREFIX: &str = "ak_";
/// Hex digits of the random part of an id (64 bits).
const ID_HEX_DIGITS: usize = 16;
/// Random bytes of a key's secret.
const SECRET_BYTES: usize = 32;

/// A key just made: the only moment its text exists outside the caller's hands.
pub struct NewApiKey {
    pub id: String,
    /// `<id>.<secret>`: what the caller sends as `Authorization: Bearer …`.
    pub key: String,
    pub sha256: String,
}

/// Draws a new key. `rand::rng()` is a CSPRNG (ChaCha, seeded and reseeded from the OS).
pub fn generate() -> NewApiKey {
    let mut rng = rand::rng();
    let id = format!("{ID_PREFIX}{:0width$x}", rng.random::<u64>(), width = ID_HEX_DIGITS);
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill(&mut secret);
    let key = format!("{id}.{}", URL_SAFE_NO_PAD.encode(secret));
    let sha256 = hex(&digest(&key));
    NewApiKey { id, key, sha256 }
}

/// What [`is_key_id`] accepts, for the OpenAPI document.
pub const KEY_ID_PATTERN: &str = "^ak_[0-9a-f]{16}$";

/// Whether `id` has the shape of a key id.
pub fn is_key_id(id: &str) -> bool {
    id.len() == ID_PREFIX.len() + ID_HEX_DIGITS
        && id.starts_with(ID_PREFIX)
        && id[ID_PREFIX.len()..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The key id of a presented token, if it has the shape of an API key.
pub fn key_id_of(token: &str) -> Option<&str> {
    let (id, secret) = token.split_once('.')?;
    (is_key_id(id) && !secret.is_empty()).then_some(id)
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A key as the server checks it.
#[derive(Debug, Clone)]
struct Entry {
    id: Arc<str>,
    digest: [u8; 32],
    scopes: Scopes,
    revoked: bool,
}

/// Who an accepted key is.
#[derive(Debug, Clone)]
pub struct KeyHolder {
    pub key_id: Arc<str>,
    pub scopes: Scopes,
}

/// Why a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Revoked,
}

/// Every stored key by id.
#[derive(Debug, Default)]
pub struct ApiKeyTable {
    by_id: FxHashMap<Arc<str>, Entry>,
}

impl ApiKeyTable {
    pub fn new(file: &KeysFile) -> ApiKeyTable {
        let by_id = file
            .api_keys
            .iter()
            .filter_map(entry)
            .map(|e| (e.id.clone(), e))
            .collect();
        ApiKeyTable { by_id }
    }

    /// Checks a token whose id is `id` (see [`key_id_of`]).
    pub fn check(&self, id: &str, token: &str) -> Result<KeyHolder, Refused> {
        let e = self.by_id.get(id).ok_or(Refused::Unknown)?;
        // The secret is checked first, so "revoked" is said only to someone who holds the key.
        if !bool::from(digest(token).ct_eq(&e.digest)) {
            return Err(Refused::Unknown);
        }
        if e.revoked {
            return Err(Refused::Revoked);
        }
        Ok(KeyHolder {
            key_id: e.id.clone(),
            scopes: e.scopes,
        })
    }
}

fn entry(r: &ApiKeyRecord) -> Option<Entry> {
    let Some(digest) = unhex(&r.sha256) else {
        tracing::error!(key_id = %r.id, "API key with a damaged hash in the keys file; it authenticates nothing");
        return None;
    };
    Some(Entry {
        id: r.id.as_str().into(),
        digest,
        scopes: Scopes::of(&r.scopes),
        revoked: r.revoked_at.is_some(),
    })
}

/// Creates a key named `name` with `scopes` in `data_dir`'s keys file; returns its record and
/// its text (shown once).
pub fn create(
    data_dir: &Path,
    name: &str,
    scopes: &[Scope],
    now: Timestamp,
) -> Result<(ApiKeyRecord, String), KeysError> {
    // The same rules as every display name (and the same JSON Schema, `constraints::name`).
    let name = taquilla_domain::Name::parse(name).map_err(|e| KeysError::Invalid(format!("name: {}", e.reason)))?;
    if scopes.len() > Scope::ALL.len() {
        return Err(KeysError::Invalid(format!("scopes: at most {}", Scope::ALL.len())));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(KeysError::Invalid(
            "scopes: at least one of admin, door, reporting".into(),
        ));
    }
    update(data_dir, |file| {
        let active = file.api_keys.iter().filter(|k| k.revoked_at.is_none()).count();
        if active >= API_KEYS_ACTIVE_MAX {
            return Err(KeysError::TooMany(format!(
                "at most {API_KEYS_ACTIVE_MAX} active API keys; revoke one first"
            )));
        }
        let new = std::iter::repeat_with(generate)
            .find(|k| file.api_keys.iter().all(|r| r.id != k.id))
            .unwrap_or_else(|| unreachable!("repeat_with never ends"));
        let record = ApiKeyRecord {
            id: new.id,
            name: name.as_str().to_string(),
            scopes,
            sha256: new.sha256,
            created_at: now,
            revoked_at: None,
        };
        file.api_keys.push(record.clone());
        Ok((record, new.key))
    })
}

/// Revokes key `id`; revoking a revoked key changes nothing and answers the same.
pub fn revoke(data_dir: &Path, id: &str, now: Timestamp) -> Result<ApiKeyRecord, KeysError> {
    update(data_dir, |file| {
        let record = file
            .api_keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| KeysError::NotFound(format!("API key {id}")))?;
        record.revoked_at.get_or_insert(now);
        Ok(record.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_check_by_id_and_digest() {
        let k = generate();
        assert!(is_key_id(&k.id), "{}", k.id);
        assert_eq!(key_id_of(&k.key), Some(k.id.as_str()));
        assert_eq!(k.key.len(), 3 + 16 + 1 + 43);
        assert_ne!(generate().key, k.key);
        let mut file = KeysFile::default();
        file.api_keys.push(ApiKeyRecord {
            id: k.id.clone(),
            name: "door 1".into(),
            scopes: vec![Scope::Door],
            sha256: k.sha256.clone(),
            created_at: Timestamp(0),
            revoked_at: None,
        });
        let table = ApiKeyTable::new(&file);
        let holder = table.check(&k.id, &k.key).unwrap();
        assert_eq!(&*holder.key_id, k.id);
        assert!(holder.scopes.allows(&[Scope::Door]));
        let forged = format!("{}.{}", k.id, "A".repeat(43));
        assert_eq!(table.check(&k.id, &forged).unwrap_err(), Refused::Unknown);
        let other = generate();
        assert_eq!(table.check(&other.id, &other.key).unwrap_err(), Refused::Unknown);
        file.api_keys[0].revoked_at = Some(Timestamp(1));
        assert_eq!(
            ApiKeyTable::new(&file).check(&k.id, &k.key).unwrap_err(),
            Refused::Revoked
        );
        for junk in [
            "",
            ".",
            "ak_.x",
            "ak_0123456789abcdeF.x",
            "ak_0123456789abcdef.",
            "ak_0123456789abcdef",
        ] {
            assert_eq!(key_id_of(junk), None, "{junk}");
        }
    }
}
