//! Browser-facing protections: security headers on every answer (a Content-Security-Policy
//! without inline script or style, no framing, no MIME sniffing, no referrer) and CORS, off
//! unless origins are configured.

use crate::config::ConfigError;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The Content-Security-Policy of every answer. The dashboard and `/docs` load their scripts
/// and styles from `/assets/` only (no inline `<script>`, `<style>`, `style=` or `on...=`),
/// talk to their own origin (REST, `/metrics`, the WebSocket), and may not be framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                       object-src 'none'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";

/// Adds the security headers (response middleware, `axum::middleware::map_response`).
pub async fn headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Each configured origin is `*` or `scheme://host[:port]` (no path).
pub fn validate_cors(origins: &[String]) -> Result<(), ConfigError> {
    for o in origins {
        if o == "*" {
            continue;
        }
        let ok = (o.starts_with("http://") || o.starts_with("https://"))
            && !o
                .split_once("://")
                .is_some_and(|(_, rest)| rest.is_empty() || rest.contains('/'))
            && HeaderValue::from_str(o).is_ok();
        if !ok {
            return Err(ConfigError::Invalid {
                field: "cors_origins",
                reason: format!(
                    "{o:?} is not an origin like https://pit.example.com or http://localhost:3000 (scheme, host and port only), or *"
                ),
            });
        }
    }
    Ok(())
}

/// The CORS layer for the configured origins; `None` (no CORS headers at all, browsers keep
/// other origins out) when there are none.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-api-key"),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert!(validate_cors(&[]).is_ok());
        assert!(validate_cors(&["*".into(), "https://a.example:8443".into()]).is_ok());
        for bad in ["a.example", "https://a.example/x", "ftp://a", "https://"] {
            assert!(validate_cors(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(cors(&[]).is_none());
        assert!(cors(&["http://localhost:3000".into()]).is_some());
    }

    #[test]
    fn the_policy_allows_no_inline_script_or_style_and_no_framing() {
        let directive = |name: &str| {
            CSP.split(';')
                .map(str::trim)
                .find(|d| d.starts_with(name))
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(directive("script-src"), "script-src 'self'");
        assert_eq!(directive("style-src"), "style-src 'self'");
        assert_eq!(directive("frame-ancestors"), "frame-ancestors 'none'");
        assert!(!CSP.contains("unsafe"));
    }
}
