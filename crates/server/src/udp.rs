//! The UDP source: JSON datagrams (one object or an array) and, on the same port, binary F1
//! game packets. A datagram is told apart by its first byte: JSON starts with `{` or `[`.
//! Malformed datagrams are counted by reason and logged at a bounded rate; never fatal.
//! Datagrams from outside `--udp-allow` are dropped first (counted, logged at a bounded rate).

use crate::metrics::{DatagramDenied, DatagramRejected};
use crate::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// Binds the socket with a large receive buffer (bursts of datagrams are common).
pub fn bind(addr: SocketAddr, recv_buffer: usize) -> std::io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // The kernel may cap the size; a smaller buffer is not an error.
    let _ = s.set_recv_buffer_size(recv_buffer);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

fn is_json(d: &[u8]) -> bool {
    matches!(
        d.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// Receives until told to stop.
pub async fn run(sock: UdpSocket, state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65_536];
    let mut f1 = f1udp::Assembler::new();
    let mut out = Vec::new();
    let allow = state.auth.udp_allow().clone();
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((_, from)) if !allow.allows(from.ip()) => DatagramDenied { from }.emit(&state.metrics),
                Ok((n, from)) => handle(&state, &buf[..n], from, &mut f1, &mut out),
                Err(e) => tracing::warn!(error = %e, "UDP receive failed"),
            },
            _ = stop.wait_for(|v| *v) => break,
        }
    }
    // Samples held while waiting for an F1 session's participants go out with fallback ids.
    let held = f1.flush();
    if !held.is_empty() {
        state.ingest_samples("f1", held);
    }
}

fn handle(
    state: &AppState,
    d: &[u8],
    from: SocketAddr,
    f1: &mut f1udp::Assembler,
    out: &mut Vec<telemetry::Sample>,
) {
    let m = &state.metrics;
    if !is_json(d) {
        if !f1udp::looks_like_f1(d) {
            m.datagrams.with_label_values(&["binary"]).inc();
            DatagramRejected {
                reason: "unknown_binary",
                detail: "binary datagram that is not an F1 game packet",
                from,
            }
            .emit(m);
            return;
        }
        m.datagrams.with_label_values(&["f1"]).inc();
        out.clear();
        match f1.push_into(d, out) {
            Ok(()) => {
                if !out.is_empty() && crate::limits::udp_allowed(state, from, out.len()) {
                    state.ingest_samples("f1", std::mem::take(out));
                }
            }
            Err(e) => DatagramRejected {
                reason: e.reason(),
                detail: &e.to_string(),
                from,
            }
            .emit(m),
        }
        return;
    }
    m.datagrams.with_label_values(&["json"]).inc();
    let now = crate::ring::unix_ns_now() as f64 / 1e9;
    match telemetry::parse_body(d, false, now) {
        Ok(batch) => {
            if crate::limits::udp_allowed(state, from, batch.total) {
                state.accept("udp", batch);
            }
        }
        Err(e) => DatagramRejected {
            reason: e.code(),
            detail: &e.to_string(),
            from,
        }
        .emit(m),
    }
}
