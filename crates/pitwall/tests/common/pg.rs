//! A fresh PostgreSQL schema per test, on the machine's server at 127.0.0.1:5432 (database
//! `test`, user `postgres`, trust auth), dropped at the end. Unreachable: the test fails with a
//! clear message, unless `PITWALL_SKIP_PG=1`; `PITWALL_TEST_PG_URL` points elsewhere. The
//! client is synchronous: make and drop a `Schema` outside the async runtime.

pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema on the test server, dropped on drop.
pub struct Schema {
    url: String,
    name: String,
}

impl Schema {
    /// `None` (skip) when the server is unreachable and PITWALL_SKIP_PG=1.
    pub fn fresh(tag: &str) -> Option<Schema> {
        let url =
            std::env::var("PITWALL_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
        let mut admin = match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(c) => c,
            Err(e) if std::env::var("PITWALL_SKIP_PG").as_deref() == Ok("1") => {
                eprintln!("PostgreSQL at {url} unreachable ({e}): skipped (PITWALL_SKIP_PG=1)");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL at {url} is unreachable: {}. This test needs a server on \
                 127.0.0.1:5432 with database `test` and user `postgres` (trust auth); set \
                 PITWALL_SKIP_PG=1 to skip it",
                store::StoreError::from(e)
            ),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("pw_test_{tag}_{}_{nanos}", std::process::id());
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        Some(Schema { url, name })
    }

    /// The store URL of this schema.
    pub fn store_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={}", self.url, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.url, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}
