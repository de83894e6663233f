//! What the server's integration tests share (`mod support;`).

/// The value of one sample of Prometheus text: `name` with its labels exactly as exposed
/// (`pitwall_points_accepted_total{source="http"}`); 0 when absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
