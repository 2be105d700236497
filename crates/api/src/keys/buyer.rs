//! The buyer-token signing keys by key id (`kid`). Key id 0 is the bootstrap secret
//! (`--buyer-secret`, or `<data-dir>/buyer-secret`); `taquilla buyer-keys rotate` adds keys
//! 1, 2, … to the keys file. The newest active key signs new tokens; every active key
//! verifies the tokens that name it, so a rotation leaves outstanding tokens valid until they
//! expire; retiring a key refuses its tokens from then on.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use taquilla_domain::Timestamp;

use super::KeysError;
use super::file::{BuyerKeyRecord, KeysFile, update};
use crate::auth::{HmacSha256, keyed};
use crate::limits::BUYER_KEYS_ACTIVE_MAX;

/// Random bytes of a new signing secret.
const SECRET_BYTES: usize = 32;

/// The active keys, with their HMAC key schedules done once (verifying a token then costs the
/// hash of the token only).
pub struct BuyerRing {
    /// By key id; a handful, so a linear search beats hashing.
    keys: Vec<(u32, HmacSha256)>,
    /// The first key id no key has had yet.
    next_kid: u32,
}

impl BuyerRing {
    pub fn new(bootstrap: &[u8], file: &KeysFile) -> BuyerRing {
        let bootstrap_retired = file.buyer_keys.iter().any(|k| k.kid == 0 && k.retired_at.is_some());
        let mut keys = Vec::new();
        if !bootstrap_retired {
            keys.push((0, keyed(bootstrap)));
        }
        for k in &file.buyer_keys {
            if let (None, Some(secret)) = (k.retired_at, &k.secret) {
                keys.push((k.kid, keyed(secret.as_bytes())));
            }
        }
        keys.sort_by_key(|(kid, _)| *kid);
        BuyerRing {
            keys,
            next_kid: file.next_buyer_kid,
        }
    }

    /// The active key `kid`.
    pub fn mac(&self, kid: u32) -> Option<&HmacSha256> {
        self.keys.iter().find(|(k, _)| *k == kid).map(|(_, m)| m)
    }

    /// The key that signs new tokens: the newest active one.
    pub fn signer(&self) -> Option<(u32, &HmacSha256)> {
        self.keys.last().map(|(k, m)| (*k, m))
    }

    /// Whether `kid` could be a key added since this ring was loaded.
    pub fn may_be_newer(&self, kid: u32) -> bool {
        kid >= self.next_kid
    }
}

/// A signing key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerKeyInfo {
    pub kid: u32,
    pub created_at: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    /// Signs new tokens.
    pub signing: bool,
}

/// Every signing key of `file`, key 0 first, and which one signs.
pub fn list(file: &KeysFile) -> Vec<BuyerKeyInfo> {
    let retired0 = file.buyer_keys.iter().find(|k| k.kid == 0).and_then(|k| k.retired_at);
    let mut out = vec![BuyerKeyInfo {
        kid: 0,
        created_at: None,
        retired_at: retired0,
        signing: false,
    }];
    out.extend(file.buyer_keys.iter().filter(|k| k.kid != 0).map(|k| BuyerKeyInfo {
        kid: k.kid,
        created_at: k.created_at,
        retired_at: k.retired_at,
        signing: false,
    }));
    out.sort_by_key(|k| k.kid);
    if let Some(newest) = out.iter_mut().rev().find(|k| k.retired_at.is_none()) {
        newest.signing = true;
    }
    out
}

/// Adds a signing key to `data_dir`; it signs every token minted from now on. Returns its key
/// id and secret (the HMAC key, for back ends that mint tokens themselves).
pub fn rotate(data_dir: &Path, now: Timestamp) -> Result<(u32, String), KeysError> {
    let mut bytes = [0u8; SECRET_BYTES];
    // `rand::rng()` is a CSPRNG (ChaCha, seeded and reseeded from the OS).
    rand::rng().fill(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    update(data_dir, |file| {
        let active = file.buyer_keys.iter().filter(|k| k.retired_at.is_none()).count();
        if active >= BUYER_KEYS_ACTIVE_MAX {
            return Err(KeysError::TooMany(format!(
                "at most {BUYER_KEYS_ACTIVE_MAX} active buyer keys besides key 0; retire one first"
            )));
        }
        let kid = file.next_buyer_kid;
        file.next_buyer_kid = kid
            .checked_add(1)
            .ok_or_else(|| KeysError::TooMany("buyer key ids are used up".into()))?;
        file.buyer_keys.push(BuyerKeyRecord {
            kid,
            secret: Some(secret.clone()),
            created_at: Some(now),
            retired_at: None,
        });
        Ok((kid, secret))
    })
}

/// Retires key `kid` of `data_dir`: its tokens are refused from now on. Refused when it is the
/// last active key (rotate first). Retiring a retired key changes nothing.
pub fn retire(data_dir: &Path, kid: u32, now: Timestamp) -> Result<BuyerKeyInfo, KeysError> {
    update(data_dir, |file| {
        let listed = list(file);
        let key = listed
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| KeysError::NotFound(format!("buyer key {kid}")))?;
        if key.retired_at.is_some() {
            return Ok(key.clone());
        }
        if listed.iter().filter(|k| k.retired_at.is_none()).count() == 1 {
            return Err(KeysError::Invalid(format!(
                "buyer key {kid} is the last active one; rotate first"
            )));
        }
        match file.buyer_keys.iter_mut().find(|k| k.kid == kid) {
            Some(k) => k.retired_at = Some(now),
            None => file.buyer_keys.push(BuyerKeyRecord {
                kid: 0,
                secret: None,
                created_at: None,
                retired_at: Some(now),
            }),
        }
        Ok(BuyerKeyInfo {
            retired_at: Some(now),
            signing: false,
            ..key.clone()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::read;

    #[test]
    fn rotation_signs_with_the_newest_and_retiring_keeps_one() {
        let dir = tempfile::tempdir().unwrap();
        let ring = BuyerRing::new(b"bootstrap-secret", &read(dir.path()).unwrap());
        assert_eq!(ring.signer().map(|(k, _)| k), Some(0));
        assert!(!ring.may_be_newer(0) && ring.may_be_newer(1));

        let (k1, s1) = rotate(dir.path(), Timestamp(1_000)).unwrap();
        let (k2, _) = rotate(dir.path(), Timestamp(2_000)).unwrap();
        assert_eq!((k1, k2), (1, 2));
        assert_eq!(s1.len(), 43);
        let file = read(dir.path()).unwrap();
        let ring = BuyerRing::new(b"bootstrap-secret", &file);
        assert_eq!(ring.signer().map(|(k, _)| k), Some(2));
        assert!(ring.mac(0).is_some() && ring.mac(1).is_some());

        retire(dir.path(), 2, Timestamp(3_000)).unwrap();
        retire(dir.path(), 0, Timestamp(3_000)).unwrap();
        let again = retire(dir.path(), 0, Timestamp(9_000)).unwrap();
        assert_eq!(
            again.retired_at,
            Some(Timestamp(3_000)),
            "retiring twice changes nothing"
        );
        let file = read(dir.path()).unwrap();
        let ring = BuyerRing::new(b"bootstrap-secret", &file);
        assert_eq!(ring.signer().map(|(k, _)| k), Some(1), "the newest active key signs");
        assert!(ring.mac(0).is_none() && ring.mac(2).is_none());
        let e = retire(dir.path(), 1, Timestamp(4_000)).unwrap_err();
        assert!(e.to_string().contains("last active"), "{e}");
        assert!(matches!(
            retire(dir.path(), 7, Timestamp(4_000)),
            Err(KeysError::NotFound(_))
        ));
        // Ids are never reused, even when a key is gone.
        assert_eq!(rotate(dir.path(), Timestamp(5_000)).unwrap().0, 3);
        let listed = list(&read(dir.path()).unwrap());
        let kids: Vec<(u32, bool, bool)> = listed
            .iter()
            .map(|k| (k.kid, k.retired_at.is_some(), k.signing))
            .collect();
        assert_eq!(
            kids,
            [(0, true, false), (1, false, false), (2, true, false), (3, false, true)]
        );
    }
}
