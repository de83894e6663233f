//! API keys: `pw_` followed by 32 random bytes in hex. The store keeps
//! HMAC-SHA256(deployment secret, key) only; the deployment secret (32 random bytes) is created
//! in the store by the first process that needs it, so every server and `pitwall keys` on the
//! same store agree. Checking a key costs one HMAC (about a microsecond) and a lookup in
//! memory; the final comparison of the hashes is constant-time (`subtle`).

use super::{AuthError, Principal, Role};
use parking_lot::RwLock;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::Arc;
use store::{ApiKeyRow, AuditEntry, Store};
use subtle::ConstantTimeEq;

/// Every API key starts with this (so a key is told apart from a JWT at a glance).
pub const KEY_PREFIX: &str = "pw_";

/// The `secrets` row holding the HMAC key the API keys are hashed with.
pub const HMAC_SECRET: &str = "api_key_hmac_sha256";

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| AuthError::Random)?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Hashes keys with the deployment's secret.
pub struct KeyHasher {
    key: hmac::Key,
}

impl KeyHasher {
    /// The deployment's hasher: its secret from the store, created there if there is none.
    pub fn from_store(store: &mut Store) -> Result<KeyHasher, AuthError> {
        let candidate = hex(&random_bytes::<32>()?);
        let secret = store.secret_or_insert(HMAC_SECRET, &candidate)?;
        let bytes = unhex(&secret).unwrap_or_else(|| secret.into_bytes());
        Ok(KeyHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// HMAC-SHA256 of the key.
    pub fn hash(&self, key: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.key, key.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// A key just created: the key itself (shown once) and its stored row.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub row: ApiKeyRow,
}

fn now_unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Creates a key of `role`: stores its hash and the audit entry (`key.create` by `actor`).
pub fn create(
    store: &mut Store,
    hasher: &KeyHasher,
    role: Role,
    name: Option<&str>,
    actor: &str,
) -> Result<NewKey, AuthError> {
    let key = format!("{KEY_PREFIX}{}", hex(&random_bytes::<32>()?));
    let id = format!("k_{}", hex(&random_bytes::<6>()?));
    let row = ApiKeyRow {
        id: id.clone(),
        name: name.map(str::to_string),
        role: role.name().to_string(),
        hash: hex(&hasher.hash(&key)),
        created_unix_s: now_unix_s(),
        revoked_unix_s: None,
    };
    let detail = match name {
        Some(n) => format!("role {role}, name {n:?}"),
        None => format!("role {role}"),
    };
    store.insert_api_key(
        &row,
        AuditEntry {
            actor,
            action: "key.create",
            target: Some(&id),
            detail: Some(&detail),
        },
    )?;
    Ok(NewKey { key, row })
}

/// Revokes a key, audited (`key.revoke` by `actor`). `None`: no such key; `Some(false)`:
/// already revoked.
pub fn revoke(store: &mut Store, id: &str, actor: &str) -> Result<Option<bool>, AuthError> {
    Ok(store.revoke_api_key(
        id,
        AuditEntry {
            actor,
            action: "key.revoke",
            target: Some(id),
            detail: None,
        },
    )?)
}

/// A valid key as held in memory.
struct Cached {
    hash: [u8; 32],
    id: String,
    principal: Principal,
}

/// The valid keys in memory, by the first 8 bytes of their hash.
#[derive(Default)]
pub struct KeyCache {
    map: RwLock<HashMap<u64, Vec<Cached>>>,
}

fn prefix(hash: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(b)
}

fn cached(row: &ApiKeyRow) -> Option<Cached> {
    let role = Role::parse(&row.role);
    let bytes = unhex(&row.hash)?;
    if role.is_none() || bytes.len() != 32 || row.revoked_unix_s.is_some() {
        return None;
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes);
    let actor = match &row.name {
        Some(n) => format!("key:{} ({n})", row.id),
        None => format!("key:{}", row.id),
    };
    Some(Cached {
        hash,
        id: row.id.clone(),
        principal: Principal {
            role,
            actor: Arc::from(actor),
        },
    })
}

impl KeyCache {
    /// The principal of a key hash, if the key is valid.
    pub fn get(&self, hash: &[u8; 32]) -> Option<Principal> {
        let map = self.map.read();
        map.get(&prefix(hash))?
            .iter()
            .find(|c| bool::from(c.hash[..].ct_eq(&hash[..])))
            .map(|c| c.principal.clone())
    }

    /// Replaces every key with `rows` (the valid ones).
    pub fn replace(&self, rows: &[ApiKeyRow]) {
        let mut map: HashMap<u64, Vec<Cached>> = HashMap::with_capacity(rows.len());
        for c in rows.iter().filter_map(cached) {
            map.entry(prefix(&c.hash)).or_default().push(c);
        }
        *self.map.write() = map;
    }

    /// Adds a key.
    pub fn insert(&self, row: &ApiKeyRow) {
        if let Some(c) = cached(row) {
            self.map.write().entry(prefix(&c.hash)).or_default().push(c);
        }
    }

    /// Forgets a key by id.
    pub fn remove(&self, id: &str) {
        let mut map = self.map.write();
        for v in map.values_mut() {
            v.retain(|c| c.id != id);
        }
        map.retain(|_, v| !v.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_with_the_deployment_secret_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = Store::open(dir.path()).unwrap();
        let h = KeyHasher::from_store(&mut st).unwrap();
        let again = KeyHasher::from_store(&mut st).unwrap();
        assert_eq!(h.hash("pw_x"), again.hash("pw_x"), "one secret per store");
        let new = create(&mut st, &h, Role::Ingest, Some("ci"), "test").unwrap();
        assert!(new.key.starts_with(KEY_PREFIX) && new.key.len() == 3 + 64);
        let cache = KeyCache::default();
        cache.replace(&st.api_keys(false).unwrap());
        let p = cache.get(&h.hash(&new.key)).expect("valid");
        assert_eq!(p.role, Some(Role::Ingest));
        assert_eq!(&*p.actor, format!("key:{} (ci)", new.row.id));
        assert!(cache.get(&h.hash("pw_other")).is_none());
        assert_eq!(revoke(&mut st, &new.row.id, "test").unwrap(), Some(true));
        assert_eq!(revoke(&mut st, &new.row.id, "test").unwrap(), Some(false));
        assert_eq!(revoke(&mut st, "k_none", "test").unwrap(), None);
        cache.replace(&st.api_keys(false).unwrap());
        assert!(cache.get(&h.hash(&new.key)).is_none());
        let log = st.audit_log(10).unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["key.revoke", "key.create"]);
    }
}
