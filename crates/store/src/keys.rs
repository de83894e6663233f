//! Access control's tables: `secrets` (per-deployment secrets, e.g. the key the API keys are
//! hashed with), `api_keys` (a keyed hash of each key, never the key itself) and `audit_log`
//! (who did what to the deployment, and when). The hashing and the key format are the
//! server's (`server::auth`); the store only keeps rows.

use crate::db::Val;
use crate::{Result, Store};
use serde::Serialize;

/// A stored API key: what it is for, never the key.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiKeyRow {
    /// Public id (`k_...`), shown in listings and used to revoke.
    pub id: String,
    pub name: Option<String>,
    /// `viewer`, `ingest` or `admin`.
    pub role: String,
    /// The keyed hash of the key (hex); skipped when listed.
    #[serde(skip)]
    pub hash: String,
    pub created_unix_s: f64,
    /// When it was revoked; `None` while it is valid.
    pub revoked_unix_s: Option<f64>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub at_unix_s: f64,
    /// Who: `key:ID (NAME)`, `jwt:SUBJECT`, `cli:USER`, `anonymous` (authentication off).
    pub actor: String,
    /// What: `key.create`, `key.revoke`, `session.delete`...
    pub action: String,
    /// On what: a key id, a session id.
    pub target: Option<String>,
    /// More, in words (a role, a name).
    pub detail: Option<String>,
}

/// An audit entry to write (the store stamps the time).
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub detail: Option<&'a str>,
}

const KEY_COLUMNS: &str = "id, name, role, hash, created_unix_s, revoked_unix_s";

fn key_row(r: &dyn crate::db::RowGet) -> Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: r.string(0)?,
        name: r.str_opt(1)?,
        role: r.string(2)?,
        hash: r.string(3)?,
        created_unix_s: r.f64(4)?,
        revoked_unix_s: r.f64_opt(5)?,
    })
}

/// Now, Unix seconds.
fn now_unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Store {
    /// The secret `name`; `candidate` is stored first if there is none yet. Processes racing
    /// to create it all get the one that was stored first.
    pub fn secret_or_insert(&mut self, name: &str, candidate: &str) -> Result<String> {
        self.retrying(|st| {
            st.exec(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                &[Val::text(name), Val::text(candidate)],
            )?;
            st.row_opt(
                "SELECT value FROM secrets WHERE name = ?1",
                &[Val::text(name)],
                |r| r.string(0),
            )?
            .ok_or_else(|| crate::StoreError::Column {
                index: 0,
                reason: "secret missing right after it was stored",
            })
        })
    }

    /// Stores a new API key (its hash) and the audit entry saying who created it, in one
    /// transaction.
    pub fn insert_api_key(&mut self, key: &ApiKeyRow, audit: AuditEntry<'_>) -> Result<()> {
        self.retrying(|st| {
            st.transaction(|tx| {
                tx.exec(
                    "INSERT INTO api_keys (id, name, role, hash, created_unix_s, revoked_unix_s)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL) ON CONFLICT DO NOTHING",
                    &[
                        Val::text(&key.id),
                        Val::text_opt(key.name.as_deref()),
                        Val::text(&key.role),
                        Val::text(&key.hash),
                        Val::real(key.created_unix_s),
                    ],
                )?;
                audit_in(tx, audit)
            })
        })
    }

    /// Every API key (revoked ones too when `with_revoked`), oldest first.
    pub fn api_keys(&self, with_revoked: bool) -> Result<Vec<ApiKeyRow>> {
        let sql = if with_revoked {
            format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_unix_s, id")
        } else {
            format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_unix_s IS NULL \
                 ORDER BY created_unix_s, id"
            )
        };
        self.rows(&sql, &[], key_row)
    }

    /// One API key by id.
    pub fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        self.row_opt(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
            &[Val::text(id)],
            key_row,
        )
    }

    /// Revokes a key and writes the audit entry, in one transaction. `None`: no such key;
    /// `Some(false)`: it was already revoked (nothing changes, nothing audited).
    pub fn revoke_api_key(&mut self, id: &str, audit: AuditEntry<'_>) -> Result<Option<bool>> {
        self.retrying(|st| {
            let Some(row) = st.api_key(id)? else {
                return Ok(None);
            };
            if row.revoked_unix_s.is_some() {
                return Ok(Some(false));
            }
            st.transaction(|tx| {
                tx.exec(
                    "UPDATE api_keys SET revoked_unix_s = ?2 WHERE id = ?1 AND revoked_unix_s IS NULL",
                    &[Val::text(id), Val::real(now_unix_s())],
                )?;
                audit_in(tx, audit)
            })?;
            Ok(Some(true))
        })
    }

    /// Appends an entry to the audit log.
    pub fn audit(&mut self, e: AuditEntry<'_>) -> Result<()> {
        self.retrying(|st| st.transaction(|tx| audit_in(tx, e)))
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditRow>> {
        self.rows(
            "SELECT id, at_unix_s, actor, action, target, detail FROM audit_log
             ORDER BY id DESC LIMIT ?1",
            &[Val::int(i64::try_from(limit).unwrap_or(i64::MAX))],
            |r| {
                Ok(AuditRow {
                    id: r.i64(0)?,
                    at_unix_s: r.f64(1)?,
                    actor: r.string(2)?,
                    action: r.string(3)?,
                    target: r.str_opt(4)?,
                    detail: r.str_opt(5)?,
                })
            },
        )
    }
}

pub(crate) fn audit_in(tx: &mut crate::db::Tx<'_>, e: AuditEntry<'_>) -> Result<()> {
    tx.exec(
        "INSERT INTO audit_log (at_unix_s, actor, action, target, detail)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        &[
            Val::real(now_unix_s()),
            Val::text(e.actor),
            Val::text(e.action),
            Val::text_opt(e.target),
            Val::text_opt(e.detail),
        ],
    )?;
    Ok(())
}
