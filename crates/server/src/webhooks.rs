//! Notifications out: coaching alerts, pit-window changes and session events POSTed to
//! webhooks.
//!
//! The consumer group `webhooks` reads `bus:insights` (and `bus:telemetry` for session events,
//! only when a hook wants them); [`EventSource`] turns messages into [`Event`]s (a pit-window
//! change is a car's ready window whose open lap, close lap, status or best plan differs from
//! that car's previous one); the [`Dispatcher`] puts each event on the bounded queue of every
//! hook that wants its kind (a full queue drops the event, counted); one task per hook sends
//! them in order, signed (`X-PitWall-Signature: sha256=HEX`, HMAC-SHA256 of the body with the
//! hook's secret), retrying after a connection error, a timeout, 408, 429 or 5xx with a
//! doubling backoff. Outcomes are counted in `pitwall_webhook_events_total{hook,outcome}` and
//! `pitwall_webhook_retries_total{hook}`; a hook is named by its index (its URL may hold a
//! token) and logged by host only.

use crate::config::ConfigError;
use crate::metrics::Metrics;
use crate::Config;
use analysis::{Call, PitWindow, WindowStatus};
use bus::{Message, Subscription};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The body a hook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// PitWall's typed JSON: an [`Event`].
    #[default]
    Pitwall,
    /// Slack-compatible: `{"text": "..."}` with the radio sentence.
    Slack,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A driver departing from their own baseline (`CoachingAlert`).
    CoachingAlert,
    /// A car's pit window changed (a new window, or other laps or plan).
    PitWindow,
    /// A session event: a race document announced, the race length known.
    Session,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CoachingAlert => "coaching_alert",
            EventKind::PitWindow => "pit_window",
            EventKind::Session => "session",
        }
    }
}

/// One hook (`[[webhooks]]` in the config file, or `--webhook URL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (http:// or https://).
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// The event kinds this hook gets; empty = all.
    #[serde(default)]
    pub events: Vec<EventKind>,
    /// HMAC-SHA256 key of this hook's signatures (default: `webhook_secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookConfig {
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// Every hook's URL is an http(s) URL.
pub fn validate(hooks: &[WebhookConfig]) -> Result<(), ConfigError> {
    for h in hooks {
        let ok = reqwest::Url::parse(&h.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !ok {
            return Err(ConfigError::Invalid {
                field: "webhooks",
                reason: format!("{:?} is not an http:// or https:// URL", host_of(&h.url)),
            });
        }
    }
    Ok(())
}

/// The host of a URL, for logs (the rest may hold a token).
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "<not a URL>".into())
}

/// One event, as PitWall's typed JSON sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    /// One sentence for the radio (the Slack format's text).
    pub text: String,
    pub session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub car: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lap: Option<u32>,
    /// The message: the `CoachingAlert`; `{pit_window, call, previous}` (the new window, the
    /// call, the car's previous window); the `SessionEvent`.
    pub data: serde_json::Value,
    /// When PitWall made the event (RFC 3339).
    pub sent_at: String,
}

impl Event {
    /// The body in a hook's format.
    pub fn body(&self, format: WebhookFormat) -> Vec<u8> {
        let v = match format {
            WebhookFormat::Pitwall => serde_json::to_value(self).unwrap_or_default(),
            WebhookFormat::Slack => serde_json::json!({ "text": self.slack_text() }),
        };
        serde_json::to_vec(&v).unwrap_or_default()
    }

    fn slack_text(&self) -> String {
        match (&self.car, self.lap) {
            (Some(car), Some(lap)) => format!("PitWall, car {car}, lap {lap}: {}", self.text),
            (Some(car), None) => format!("PitWall, car {car}: {}", self.text),
            _ => format!("PitWall: {}", self.text),
        }
    }
}

/// `sha256=HEX`: the HMAC-SHA256 of `body` under `secret` (ring's, as the API keys' hashes).
pub fn signature(secret: &str, body: &[u8]) -> String {
    use std::fmt::Write as _;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The part of a window that makes it a change when it differs.
#[derive(Debug, Clone, PartialEq)]
struct WindowKey {
    open_lap: Option<u32>,
    close_lap: Option<u32>,
    best_plan: Option<String>,
}

/// Cars whose last window is remembered, at most (then the memory starts again).
const MAX_CARS: usize = 50_000;

/// Turns bus messages into events, remembering each car's last ready window.
#[derive(Debug, Default)]
pub struct EventSource {
    windows: HashMap<(String, String), (WindowKey, serde_json::Value)>,
}

impl EventSource {
    pub fn event(&mut self, m: &Message) -> Option<Event> {
        match m {
            Message::Alert(a) => Some(Event {
                kind: EventKind::CoachingAlert,
                text: a.message.clone(),
                session_id: a.session_id.clone(),
                car: Some(a.car_id.clone()),
                track: Some(a.track.clone()),
                lap: Some(a.lap),
                data: serde_json::to_value(&**a).unwrap_or_default(),
                sent_at: crate::http::now_rfc3339(),
            }),
            Message::Insight(i) => i.pit_window.as_ref().and_then(|w| {
                self.pit_window(
                    &i.session_id,
                    &i.chassis,
                    i.track.as_deref(),
                    i.lap,
                    w,
                    i.call.as_ref(),
                )
            }),
            Message::Session(e) => {
                let text = match &**e {
                    analysis::SessionEvent::Race { session_id, doc } => {
                        let track = doc.get("track").and_then(|t| t.as_str()).unwrap_or("?");
                        match doc.get("total_laps").and_then(|n| n.as_u64()) {
                            Some(n) => format!("session {session_id} at {track}: {n} laps"),
                            None => format!("session {session_id} at {track}"),
                        }
                    }
                    analysis::SessionEvent::TotalLaps {
                        session_id,
                        total_laps,
                    } => format!("session {session_id}: the race is {total_laps} laps"),
                };
                Some(Event {
                    kind: EventKind::Session,
                    text,
                    session_id: e.session_id().to_string(),
                    car: None,
                    track: None,
                    lap: None,
                    data: serde_json::to_value(&**e).unwrap_or_default(),
                    sent_at: crate::http::now_rfc3339(),
                })
            }
            Message::Telemetry(_) | Message::Profile(_) | Message::StrategyJob(_) => None,
        }
    }

    /// An event when `window` (a ready one) differs from the car's previous ready window.
    pub fn pit_window(
        &mut self,
        session: &str,
        car: &str,
        track: Option<&str>,
        lap: u32,
        window: &PitWindow,
        call: Option<&Call>,
    ) -> Option<Event> {
        if window.status != WindowStatus::Ready {
            return None;
        }
        let key = WindowKey {
            open_lap: window.open_lap,
            close_lap: window.close_lap,
            best_plan: window.best_plan.clone(),
        };
        let id = (session.to_string(), car.to_string());
        if self.windows.get(&id).is_some_and(|(k, _)| *k == key) {
            return None;
        }
        if self.windows.len() >= MAX_CARS && !self.windows.contains_key(&id) {
            self.windows.clear();
        }
        let now = serde_json::to_value(window).unwrap_or_default();
        let previous = self
            .windows
            .insert(id, (key, now.clone()))
            .map(|(_, v)| v)
            .unwrap_or(serde_json::Value::Null);
        let text = match call.map(|c| c.text.trim()) {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => window.text.clone(),
        };
        Some(Event {
            kind: EventKind::PitWindow,
            text,
            session_id: session.to_string(),
            car: Some(car.to_string()),
            track: track.map(str::to_string),
            lap: Some(lap),
            data: serde_json::json!({ "pit_window": now, "call": call, "previous": previous }),
            sent_at: crate::http::now_rfc3339(),
        })
    }
}

/// A hook as the sender sees it.
#[derive(Debug, Clone)]
pub struct Hook {
    pub index: usize,
    pub config: WebhookConfig,
    /// The hook's secret, else `webhook_secret`; no signature without one.
    pub secret: Option<String>,
}

/// Puts events on the hooks' bounded queues.
pub struct Dispatcher {
    hooks: Vec<(Hook, mpsc::Sender<Arc<Event>>)>,
    metrics: Arc<Metrics>,
}

/// The receiving end of one hook's queue.
pub struct HookQueue {
    pub hook: Hook,
    pub rx: mpsc::Receiver<Arc<Event>>,
}

impl Dispatcher {
    /// A dispatcher for every configured hook, and their queues (`webhook_queue` events each).
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> (Dispatcher, Vec<HookQueue>) {
        let mut hooks = Vec::new();
        let mut queues = Vec::new();
        for (index, c) in config.webhooks.iter().enumerate() {
            let (tx, rx) = mpsc::channel(config.webhook_queue.max(1));
            let hook = Hook {
                index,
                config: c.clone(),
                secret: c.secret.clone().or_else(|| config.webhook_secret.clone()),
            };
            hooks.push((hook.clone(), tx));
            queues.push(HookQueue { hook, rx });
        }
        (Dispatcher { hooks, metrics }, queues)
    }

    /// Whether any hook wants session events (then `bus:telemetry` is read too).
    pub fn wants(&self, kind: EventKind) -> bool {
        self.hooks.iter().any(|(h, _)| h.config.wants(kind))
    }

    /// Queues `event` for every hook that wants it; a full queue drops it (counted).
    pub fn dispatch(&self, event: &Arc<Event>) {
        for (hook, tx) in &self.hooks {
            if !hook.config.wants(event.kind) {
                continue;
            }
            if tx.try_send(event.clone()).is_err() {
                let label = hook.index.to_string();
                self.metrics
                    .webhook_events
                    .with_label_values(&[label.as_str(), "dropped"])
                    .inc();
                if let Some(suppressed) = self.metrics.log_allowed("webhook_dropped") {
                    tracing::warn!(
                        hook = hook.index,
                        host = %host_of(&hook.config.url),
                        kind = event.kind.as_str(),
                        suppressed,
                        "webhook queue full: event dropped"
                    );
                }
            }
        }
    }
}

/// How a hook's events are sent.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

impl Delivery {
    pub fn from_config(c: &Config) -> Delivery {
        Delivery {
            max_attempts: c.webhook_max_attempts.max(1),
            backoff: Duration::from_millis(c.webhook_backoff_ms),
            timeout: Duration::from_millis(c.webhook_timeout_ms),
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Sends one hook's events in order until its queue closes and is empty.
pub async fn send_loop(
    mut q: HookQueue,
    client: reqwest::Client,
    d: Delivery,
    metrics: Arc<Metrics>,
) {
    let label = q.hook.index.to_string();
    let host = host_of(&q.hook.config.url);
    while let Some(event) = q.rx.recv().await {
        let body = event.body(q.hook.config.format);
        let sig = q.hook.secret.as_deref().map(|s| signature(s, &body));
        let mut wait = d.backoff;
        let mut attempt = 1;
        let outcome = loop {
            let mut req = client
                .post(&q.hook.config.url)
                .timeout(d.timeout)
                .header("content-type", "application/json")
                .header("user-agent", concat!("PitWall/", env!("CARGO_PKG_VERSION")))
                .header("x-pitwall-event", event.kind.as_str())
                .body(body.clone());
            if let Some(s) = &sig {
                req = req.header("x-pitwall-signature", s);
            }
            let (retry, what) = match req.send().await {
                Ok(r) if r.status().is_success() => break "delivered",
                Ok(r) => {
                    let s = r.status();
                    let again = s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429;
                    (again, format!("answered {s}"))
                }
                Err(e) => (true, describe(e)),
            };
            if !retry || attempt >= d.max_attempts {
                tracing::warn!(hook = q.hook.index, %host, kind = event.kind.as_str(), attempt,
                    "webhook delivery failed: {what}");
                break "failed";
            }
            tracing::debug!(hook = q.hook.index, %host, attempt, "webhook delivery: {what}; retrying");
            metrics
                .webhook_retries
                .with_label_values(&[label.as_str()])
                .inc();
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
            attempt += 1;
        };
        metrics
            .webhook_events
            .with_label_values(&[label.as_str(), outcome])
            .inc();
    }
}

/// A client error without its URL (the URL may hold a token).
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.without_url().to_string()
    }
}

/// Reads the `webhooks` subscriptions until the bus closes, dispatching events; then lets the
/// hooks send what they hold and ends.
pub async fn run(
    config: Config,
    mut insights: Box<dyn Subscription>,
    mut telemetry: Option<Box<dyn Subscription>>,
    metrics: Arc<Metrics>,
) {
    let (dispatcher, queues) = Dispatcher::new(&config, metrics.clone());
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: cannot build the HTTP client; no webhooks");
            return;
        }
    };
    let d = Delivery::from_config(&config);
    let mut senders = tokio::task::JoinSet::new();
    for q in queues {
        senders.spawn(send_loop(q, client.clone(), d, metrics.clone()));
    }
    let mut source = EventSource::default();
    let mut insights_open = true;
    loop {
        let (from_insights, d) = tokio::select! {
            d = insights.next(), if insights_open => (true, d),
            d = async {
                match telemetry.as_mut() {
                    Some(t) => t.next().await,
                    None => std::future::pending().await,
                }
            }, if telemetry.is_some() => (false, d),
            else => break,
        };
        let Some(d) = d else {
            if from_insights {
                insights_open = false;
            } else {
                telemetry = None;
            }
            continue;
        };
        if let Some(e) = source.event(&d.message) {
            dispatcher.dispatch(&Arc::new(e));
        }
        let _ = if from_insights {
            insights.ack(&d).await
        } else {
            match telemetry.as_mut() {
                Some(t) => t.ack(&d).await,
                None => Ok(()),
            }
        };
    }
    drop(dispatcher);
    while senders.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(open: u32, plan: &str) -> PitWindow {
        PitWindow {
            status: WindowStatus::Ready,
            open_lap: Some(open),
            close_lap: Some(open + 3),
            best_plan: Some(plan.into()),
            text: format!("Box between laps {open} and {}", open + 3),
            ..PitWindow::default()
        }
    }

    #[test]
    fn a_pit_window_event_is_a_changed_ready_window_per_car() {
        let mut s = EventSource::default();
        let computing = PitWindow::pending(WindowStatus::Computing, "computing");
        assert!(s.pit_window("s", "7", None, 3, &computing, None).is_none());
        let e = s
            .pit_window("s", "7", Some("Austin"), 4, &window(15, "L15 hard"), None)
            .expect("the first window is a change");
        assert_eq!(e.kind, EventKind::PitWindow);
        assert_eq!(e.text, "Box between laps 15 and 18");
        assert_eq!(e.data["previous"], serde_json::Value::Null);
        // The same window on later laps (other evidence, other races simulated): no event.
        let mut again = window(15, "L15 hard");
        again.races_simulated = 9999;
        assert!(s.pit_window("s", "7", None, 5, &again, None).is_none());
        // Another car has its own.
        assert!(s.pit_window("s", "8", None, 5, &again, None).is_some());
        let e = s
            .pit_window("s", "7", None, 6, &window(16, "L16 hard"), None)
            .expect("moved a lap");
        assert_eq!(e.data["previous"]["open_lap"], 15);
        assert_eq!(e.data["pit_window"]["open_lap"], 16);
    }

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_bodies_carry_the_radio_sentence() {
        let e = Event {
            kind: EventKind::CoachingAlert,
            text: "Braking 12 m later than your baseline into Turn 4".into(),
            session_id: "s".into(),
            car: Some("3".into()),
            track: Some("Austin".into()),
            lap: Some(11),
            data: serde_json::Value::Null,
            sent_at: "2026-01-01T00:00:00Z".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&e.body(WebhookFormat::Slack)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"text": "PitWall, car 3, lap 11: Braking 12 m later than your baseline into Turn 4"})
        );
        let v: serde_json::Value = serde_json::from_slice(&e.body(WebhookFormat::Pitwall)).unwrap();
        assert_eq!(v["kind"], "coaching_alert");
        assert_eq!(v["car"], "3");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let metrics = Arc::new(Metrics::new());
        let config = Config {
            webhooks: vec![
                WebhookConfig {
                    url: "http://127.0.0.1:9/a".into(),
                    format: WebhookFormat::Pitwall,
                    events: vec![],
                    secret: None,
                },
                WebhookConfig {
                    url: "http://127.0.0.1:9/b".into(),
                    format: WebhookFormat::Slack,
                    events: vec![EventKind::Session],
                    secret: None,
                },
            ],
            webhook_queue: 2,
            ..Config::default()
        };
        let (d, mut queues) = Dispatcher::new(&config, metrics.clone());
        let e = Arc::new(Event {
            kind: EventKind::PitWindow,
            text: "x".into(),
            session_id: "s".into(),
            car: None,
            track: None,
            lap: None,
            data: serde_json::Value::Null,
            sent_at: String::new(),
        });
        for _ in 0..5 {
            d.dispatch(&e);
        }
        let text = metrics.render();
        assert!(text.contains("pitwall_webhook_events_total{hook=\"0\",outcome=\"dropped\"} 3"));
        assert!(
            !text.contains("hook=\"1\""),
            "hook 1 wants session events only"
        );
        assert_eq!(
            queues[0].rx.try_recv().map(|e| e.kind),
            Ok(EventKind::PitWindow)
        );
        assert!(queues[1].rx.try_recv().is_err());
    }

    #[test]
    fn hooks_are_http_urls() {
        let hook = |url: &str| WebhookConfig {
            url: url.into(),
            format: WebhookFormat::Pitwall,
            events: vec![],
            secret: None,
        };
        assert!(validate(&[hook("https://hooks.example.com/x?token=1")]).is_ok());
        assert!(validate(&[hook("ftp://a/b")]).is_err());
        assert!(validate(&[hook("not a url")]).is_err());
        let c: Config = toml::from_str(
            "[[webhooks]]\nurl = \"https://h.example/x\"\nformat = \"slack\"\nevents = [\"pit_window\"]\n",
        )
        .unwrap();
        assert_eq!(c.webhooks[0].format, WebhookFormat::Slack);
        assert!(c.webhooks[0].wants(EventKind::PitWindow));
        assert!(!c.webhooks[0].wants(EventKind::CoachingAlert));
    }
}
