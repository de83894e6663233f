//! `serve` flags for running on a network: rate limits, TLS, CORS and webhooks (README
//! "Running it on a network"). Merged over the config file by [`NetworkArgs::apply`].

use clap::{Args, ValueEnum};
use server::webhooks::{WebhookConfig, WebhookFormat};
use server::Config;
use std::path::PathBuf;

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum WebhookFormatArg {
    /// PitWall's typed JSON (kind, text, session, car, lap, data).
    Pitwall,
    /// Slack-compatible {"text": "..."} with the radio sentence.
    Slack,
}

#[derive(Args, Debug, Clone, Default)]
pub struct NetworkArgs {
    /// API requests a minute per client IP (or API key); answered 429 with Retry-After above
    /// it; 0 = no limit [default: 100].
    #[arg(long, env = "PITWALL_RATE_LIMIT_REST_PER_MIN", value_name = "N")]
    pub rate_limit_rest_per_min: Option<u32>,
    /// Telemetry points a second per source (HTTP client IP, UDP sender IP); HTTP bodies over
    /// it get 429, UDP points over it are dropped (counted); 0 = no limit [default: 10000].
    #[arg(long, env = "PITWALL_RATE_LIMIT_POINTS_PER_S", value_name = "N")]
    pub rate_limit_points_per_s: Option<u32>,
    /// TLS certificate chain (PEM): serve HTTPS and WSS instead of HTTP and WS (with --tls-key).
    #[arg(long, env = "PITWALL_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1), with --tls-cert.
    #[arg(long, env = "PITWALL_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// A browser origin allowed to call the API (CORS), e.g. https://pit.example.com;
    /// repeatable, `*` = any [default: none: CORS off].
    #[arg(
        long = "cors-origin",
        env = "PITWALL_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,
    /// POST coaching alerts, pit-window changes and session events to URL; repeatable (a
    /// format and event filter per hook: [[webhooks]] in the config file).
    #[arg(
        long = "webhook",
        env = "PITWALL_WEBHOOKS",
        value_delimiter = ',',
        value_name = "URL",
        hide_env_values = true
    )]
    pub webhooks: Vec<String>,
    /// Body sent to the --webhook URLs [default: pitwall].
    #[arg(long, env = "PITWALL_WEBHOOK_FORMAT", value_enum)]
    pub webhook_format: Option<WebhookFormatArg>,
    /// HMAC-SHA256 key signing webhook bodies (header X-PitWall-Signature: sha256=HEX) for
    /// hooks without a secret of their own. Prefer the environment variable to the flag.
    #[arg(
        long,
        env = "PITWALL_WEBHOOK_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<String>,
}

impl NetworkArgs {
    /// Flags and environment over the config file: scalars replace, `--cors-origin` replaces
    /// the file's list, `--webhook` hooks are added to the file's.
    pub fn apply(&self, c: &mut Config) {
        if let Some(n) = self.rate_limit_rest_per_min {
            c.rate_limit_rest_per_min = n;
        }
        if let Some(n) = self.rate_limit_points_per_s {
            c.rate_limit_points_per_s = n;
        }
        if let Some(p) = &self.tls_cert {
            c.tls_cert = Some(p.clone());
        }
        if let Some(p) = &self.tls_key {
            c.tls_key = Some(p.clone());
        }
        let origins: Vec<String> = self
            .cors_origins
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if !origins.is_empty() {
            c.cors_origins = origins;
        }
        let format = match self.webhook_format {
            Some(WebhookFormatArg::Slack) => WebhookFormat::Slack,
            Some(WebhookFormatArg::Pitwall) | None => WebhookFormat::Pitwall,
        };
        for url in self
            .webhooks
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
        {
            c.webhooks.push(WebhookConfig {
                url: url.to_string(),
                format,
                events: Vec::new(),
                secret: None,
            });
        }
        if let Some(s) = &self.webhook_secret {
            c.webhook_secret = Some(s.clone());
        }
    }
}
