//! Access control end to end, on a server started in process with authentication on:
//! every route of the OpenAPI document answers 401 without credentials and 403 with a role
//! too low (or none), and lets the right role through; revoked keys are refused at once;
//! JWTs (HS256, ES256) are checked for signature, expiry and not-before; the store holds no
//! key in clear; UDP datagrams from outside the allow-list are dropped and counted.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use server::auth::{AuthConfig, Role};
use std::time::Duration;

mod support;
use support::metric;

const SECRET: &str = "test-secret-of-the-identity-provider-0123456789";

struct Srv {
    running: Option<server::Running>,
    base: String,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn start(auth: AuthConfig) -> Srv {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = server::Config {
        http: "127.0.0.1:0".parse().expect("addr"),
        udp: Some("127.0.0.1:0".parse().expect("addr")),
        data_dir: dir.path().to_path_buf(),
        auth,
        ..server::Config::default()
    };
    let running = server::start(config).await.expect("start");
    Srv {
        base: format!("http://{}", running.http_addr),
        running: Some(running),
        client: reqwest::Client::new(),
        dir,
    }
}

impl Srv {
    fn running(&self) -> &server::Running {
        self.running.as_ref().expect("running")
    }

    /// A new key of `role` (created as the CLI would, straight in the store).
    async fn key(&self, role: Role) -> (String, String) {
        let auth = self.running().state.auth.clone();
        let new = tokio::task::spawn_blocking(move || auth.create_key(role, Some("t"), "test"))
            .await
            .expect("join")
            .expect("create key");
        (new.row.id, new.key)
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> (u16, Option<String>, serde_json::Value) {
        let method =
            reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if method == reqwest::Method::POST {
            req = req.header("content-type", "application/json").body("{}");
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        (status, challenge, body)
    }

    async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("shutdown");
        }
        self.dir
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn hs256(claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

/// Every operation of the served OpenAPI document, generated at test time: 401 (with
/// `WWW-Authenticate: Bearer`) without credentials, 403 with a valid token that has no role
/// and with the role just below, the right role (and admin) through; public ones open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_needs_its_role() {
    let srv = start(AuthConfig {
        required: true,
        jwt_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    })
    .await;
    let mut keys = std::collections::HashMap::new();
    for role in Role::ALL {
        keys.insert(role, srv.key(role).await.1);
    }
    let exp = now_s() + 600;
    let no_role = hs256(serde_json::json!({"sub": "nobody", "exp": exp}), SECRET);
    let (status, _, doc) = srv.send("GET", "/api/openapi.json", None).await;
    assert_eq!(status, 200, "the document is public");
    let paths = doc["paths"].as_object().expect("paths");
    let (mut protected, mut public) = (0, 0);
    for (template, item) in paths {
        let path = template
            .split('/')
            .map(|seg| if seg.starts_with('{') { "dummy" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().expect("operations") {
            if !server::auth::routes::OPENAPI_METHODS.contains(&method.as_str()) {
                continue;
            }
            let what = format!("{} {template}", method.to_uppercase());
            let Some(role) = op["x-pitwall-role"].as_str() else {
                assert_eq!(op["security"], serde_json::json!([]), "{what}: public");
                let (s, _, _) = srv.send(method, &path, None).await;
                assert!(s != 401 && s != 403, "{what}: public, got {s}");
                public += 1;
                continue;
            };
            protected += 1;
            let role = Role::parse(role).expect("a role");
            assert!(op["responses"]["401"].is_object(), "{what}: 401 documented");
            let (s, challenge, body) = srv.send(method, &path, None).await;
            assert_eq!(s, 401, "{what} without credentials");
            assert!(
                challenge
                    .as_deref()
                    .is_some_and(|c| c.starts_with("Bearer")),
                "{what}: WWW-Authenticate {challenge:?}"
            );
            assert_eq!(body["error"], "unauthorized", "{what}: {body}");
            let (s, _, _) = srv.send(method, &path, Some("pw_not_a_key")).await;
            assert_eq!(s, 401, "{what} with an unknown key");
            let (s, _, body) = srv.send(method, &path, Some(&no_role)).await;
            assert_eq!(s, 403, "{what} with a token without a role");
            assert_eq!(body["error"], "forbidden", "{what}: {body}");
            for below in Role::ALL.into_iter().filter(|r| *r < role) {
                let (s, _, body) = srv.send(method, &path, Some(&keys[&below])).await;
                assert_eq!(s, 403, "{what} as {below}: {body}");
            }
            for ok in Role::ALL.into_iter().filter(|r| *r >= role) {
                let (s, _, body) = srv.send(method, &path, Some(&keys[&ok])).await;
                assert!(s != 401 && s != 403, "{what} as {ok}: {s} {body}");
            }
        }
    }
    assert!(
        protected >= 15 && public >= 2,
        "{protected} protected, {public} public"
    );

    // The WebSocket (not in the document): the token on the upgrade, header or ?token=.
    let ws = format!("{}/ws/realtime", srv.base.replacen("http", "ws", 1));
    let refused = tokio_tungstenite::connect_async(&ws).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("upgrade without a token: {:?}", other.map(|_| ())),
    }
    let ok = tokio_tungstenite::connect_async(format!("{ws}?token={}", keys[&Role::Viewer])).await;
    assert!(ok.is_ok(), "a viewer key opens the WebSocket");
    srv.stop().await;
}

/// A key revoked over HTTP is refused by the next request; the audit log says who did what;
/// listings never show a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_at_once_and_audited() {
    let srv = start(AuthConfig {
        required: true,
        ..AuthConfig::default()
    })
    .await;
    let (admin_id, admin) = srv.key(Role::Admin).await;
    let resp = srv
        .client
        .post(format!("{}/api/keys", srv.base))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"role": "viewer", "name": "pit laptop"}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status().as_u16(), 201);
    let created: serde_json::Value = resp.json().await.expect("json");
    let (id, key) = (
        created["id"].as_str().expect("id").to_string(),
        created["key"].as_str().expect("key").to_string(),
    );
    assert_eq!(srv.send("GET", "/api/sessions", Some(&key)).await.0, 200);
    let (s, _, body) = srv
        .send("DELETE", &format!("/api/keys/{id}"), Some(&admin))
        .await;
    assert_eq!((s, &body["revoked"]), (200, &serde_json::json!(true)));
    let (s, _, body) = srv.send("GET", "/api/sessions", Some(&key)).await;
    assert_eq!(s, 401, "revoked: {body}");
    let (s, _, _) = srv
        .send("DELETE", "/api/keys/k_000000000000", Some(&admin))
        .await;
    assert_eq!(s, 404);
    let resp = srv
        .client
        .post(format!("{}/api/keys", srv.base))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"role": "root"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["field"], "role", "{body}");

    let (_, _, list) = srv.send("GET", "/api/keys", Some(&admin)).await;
    let listed = list["keys"].as_array().expect("keys");
    assert!(listed
        .iter()
        .any(|k| k["id"] == id && k["revoked_unix_s"].is_number()));
    assert!(
        !list.to_string().contains(&key),
        "a listing never shows a key"
    );

    let (_, _, audit) = srv.send("GET", "/api/audit", Some(&admin)).await;
    let entries = audit["entries"].as_array().expect("entries");
    let actor = format!("key:{admin_id} (t)");
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["actor"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("key.revoke".into(), actor.clone())),
        "{seen:?}"
    );
    assert!(seen.contains(&("key.create".into(), actor)), "{seen:?}");
    assert_eq!(
        srv.send("GET", "/api/audit?limit=0", Some(&admin)).await.0,
        400
    );
    srv.stop().await;
}

/// An admin deletes a stored session; the audit log has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_deletes_a_session() {
    let srv = start(AuthConfig::default()).await; // loopback, auth off: anonymous admin
    let st = srv.running().state.clone();
    assert_eq!(
        st.ingest_samples("test", vec![telemetry::Sample::new("gone", "c1", 1.0)]),
        1
    );
    let mut stored = false;
    for _ in 0..200 {
        let (_, _, list) = srv.send("GET", "/api/sessions", None).await;
        if list.to_string().contains("\"gone\"") {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stored, "the session was stored");
    let (s, _, body) = srv.send("DELETE", "/api/sessions/gone", None).await;
    assert_eq!(s, 200, "{body}");
    let (_, _, list) = srv.send("GET", "/api/sessions", None).await;
    assert!(!list.to_string().contains("\"gone\""), "{list}");
    assert_eq!(srv.send("DELETE", "/api/sessions/gone", None).await.0, 404);
    let (_, _, audit) = srv.send("GET", "/api/audit", None).await;
    assert_eq!(audit["entries"][0]["action"], "session.delete");
    assert_eq!(audit["entries"][0]["actor"], "anonymous");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_tokens_are_checked() {
    let srv = start(AuthConfig {
        jwt_secret: Some(SECRET.into()),
        ..AuthConfig::default()
    })
    .await;
    let now = now_s();
    let good = hs256(
        serde_json::json!({"sub": "alice", "role": "viewer", "exp": now + 600}),
        SECRET,
    );
    assert_eq!(srv.send("GET", "/api/sessions", Some(&good)).await.0, 200);
    // The role may be a list; the highest PitWall role in it counts.
    let listed = hs256(
        serde_json::json!({"sub": "bob", "role": ["staff", "ingest"], "exp": now + 600}),
        SECRET,
    );
    assert_eq!(srv.send("POST", "/api/ingest", Some(&listed)).await.0, 422);
    assert_eq!(srv.send("POST", "/api/ingest", Some(&good)).await.0, 403);
    for (what, token) in [
        (
            "expired",
            hs256(
                serde_json::json!({"sub": "a", "role": "admin", "exp": now - 3600}),
                SECRET,
            ),
        ),
        (
            "not valid yet",
            hs256(
                serde_json::json!({"sub": "a", "role": "admin", "exp": now + 7200, "nbf": now + 3600}),
                SECRET,
            ),
        ),
        (
            "bad signature",
            hs256(
                serde_json::json!({"sub": "a", "role": "admin", "exp": now + 600}),
                "another-secret-another-secret-another-secret",
            ),
        ),
        (
            "missing claim exp",
            hs256(serde_json::json!({"sub": "a", "role": "admin"}), SECRET),
        ),
    ] {
        let (s, challenge, body) = srv.send("GET", "/api/sessions", Some(&token)).await;
        assert_eq!(s, 401, "{what}");
        assert!(
            body["reason"].as_str().unwrap_or("").contains(what),
            "{what}: {body}"
        );
        assert!(challenge.unwrap_or_default().contains("invalid_token"));
    }
    srv.stop().await;
}

/// A P-256 key pair made with ring: (PKCS#8 private key, PEM public key).
fn p256_pair() -> (Vec<u8>, String) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("pair");
    // SubjectPublicKeyInfo: id-ecPublicKey, prime256v1, then the uncompressed point.
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&spki);
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n");
    (pkcs8.as_ref().to_vec(), pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_tokens_from_a_public_key() {
    let keydir = tempfile::tempdir().expect("tempdir");
    let (private, pem) = p256_pair();
    let (other, _) = p256_pair();
    let pem_path = keydir.path().join("idp.pem");
    std::fs::write(&pem_path, pem).expect("write pem");
    let srv = start(AuthConfig {
        jwt_public_key: Some(pem_path),
        jwt_role_claim: "realm_access.roles".into(),
        jwt_audience: Some("pitwall".into()),
        ..AuthConfig::default()
    })
    .await;
    let es256 = |key: &[u8], claims: serde_json::Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &EncodingKey::from_ec_der(key),
        )
        .expect("encode")
    };
    let claims = serde_json::json!({"sub": "carol", "aud": "pitwall", "exp": now_s() + 600,
                                    "realm_access": {"roles": ["admin"]}});
    let good = es256(&private, claims.clone());
    assert_eq!(srv.send("GET", "/api/keys", Some(&good)).await.0, 200);
    let forged = es256(&other, claims.clone());
    assert_eq!(srv.send("GET", "/api/keys", Some(&forged)).await.0, 401);
    let mut wrong_aud = claims;
    wrong_aud["aud"] = "someone-else".into();
    let wrong_aud = es256(&private, wrong_aud);
    assert_eq!(srv.send("GET", "/api/keys", Some(&wrong_aud)).await.0, 401);
    let hs = hs256(
        serde_json::json!({"sub": "x", "aud": "pitwall", "exp": now_s() + 600, "realm_access": {"roles": ["admin"]}}),
        SECRET,
    );
    assert_eq!(
        srv.send("GET", "/api/keys", Some(&hs)).await.0,
        401,
        "HS256 refused"
    );
    srv.stop().await;
}

/// The store keeps a keyed hash of each key: neither the key nor its secret part is in the
/// SQLite files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_holds_no_key_in_clear() {
    let srv = start(AuthConfig {
        required: true,
        ..AuthConfig::default()
    })
    .await;
    let (id, key) = srv.key(Role::Admin).await;
    assert_eq!(srv.send("GET", "/api/keys", Some(&key)).await.0, 200);
    let dir = srv.stop().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let p = entry.expect("entry").path();
        if p.is_file() {
            bytes.extend(std::fs::read(&p).expect("read"));
        }
    }
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        has(id.as_bytes()),
        "the key's id is stored (the right files were read)"
    );
    let secret = key.strip_prefix("pw_").expect("prefix");
    assert!(!has(key.as_bytes()), "the key is in the store");
    assert!(!has(secret.as_bytes()), "the key's secret is in the store");
    assert!(
        !has(&secret.as_bytes()[..16]),
        "part of the key's secret is in the store"
    );
}

/// A datagram from outside `--udp-allow` is dropped and counted; the point is not ingested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_from_outside_the_allow_list_is_dropped() {
    let srv = start(AuthConfig {
        udp_allow: vec![server::auth::udp_allow::parse_network("10.0.0.0/8").expect("net")],
        ..AuthConfig::default()
    })
    .await;
    let udp = srv.running().udp_addr.expect("udp");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.send_to(
        br#"{"track":"acc","chassis":"c9","t_s":1,"speed_kmh":100}"#,
        udp,
    )
    .expect("send");
    let mut text = String::new();
    for _ in 0..250 {
        text = srv
            .client
            .get(format!("{}/metrics", srv.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if metric(&text, "pitwall_udp_datagrams_denied_total") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        metric(&text, "pitwall_udp_datagrams_denied_total"),
        1.0,
        "{text}"
    );
    // Dropped before parsing: the counter moves in the same step, so nothing can follow.
    assert_eq!(
        metric(&text, "pitwall_points_accepted_total{source=\"udp\"}"),
        0.0
    );
    assert_eq!(
        metric(&text, "pitwall_udp_datagrams_total{kind=\"json\"}"),
        0.0
    );
    srv.stop().await;
}
