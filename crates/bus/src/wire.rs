//! The one place where every [`Message`] is written for Redis and read back.
//!
//! Each message is a versioned JSON envelope, `{"v":1,"kind":"...","payload":...}`, stored in
//! the field [`FIELD`] of a stream entry. The payload is the message's own serde form (the same
//! types the REST API and the store use), so nothing is read back by string keys. Decoding
//! never panics: a bad entry is a [`WireError`], which the Redis bus dead-letters and counts.
//!
//! JSON, not a binary format: `Sample` skips absent channels (`skip_serializing_if`), which
//! only self-describing formats read back, and the envelope stays readable with `redis-cli`.
//! Non-finite numbers (NaN, ±inf) do not survive JSON; validated samples carry none.

use crate::{Message, TelemetryBatch};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The envelope version this build writes and reads.
pub const WIRE_VERSION: u32 = 1;

/// The stream-entry field holding the envelope.
pub const FIELD: &str = "m";

/// Why bytes from the wire are not a message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Not a JSON envelope at all (or its payload does not match its kind).
    #[error("malformed {kind} message: {source}")]
    Malformed {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    /// An envelope of a version this build does not read.
    #[error("unsupported wire version {0} (this build reads {WIRE_VERSION})")]
    Version(u32),
    /// An envelope of a kind this build does not know.
    #[error("unknown message kind {0:?}")]
    UnknownKind(String),
    /// A well-formed envelope whose content breaks an invariant.
    #[error("invalid {kind} message: {reason}")]
    Invalid { kind: &'static str, reason: String },
    /// The stream entry has no envelope field.
    #[error("stream entry without the {FIELD:?} field")]
    MissingField,
    /// A message could not be serialised.
    #[error("cannot encode {kind}: {source}")]
    Encode {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The kind tag of a message in the envelope.
pub fn kind(message: &Message) -> &'static str {
    match message {
        Message::Telemetry(_) => "telemetry",
        Message::Session(_) => "session",
        Message::Insight(_) => "insight",
        Message::Alert(_) => "alert",
        Message::Profile(_) => "profile",
        Message::StrategyJob(_) => "strategy_job",
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T: Serialize + ?Sized> {
    v: u32,
    kind: &'static str,
    payload: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    v: u32,
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

fn write<T: Serialize + ?Sized>(kind: &'static str, payload: &T) -> Result<Vec<u8>, WireError> {
    serde_json::to_vec(&EnvelopeOut {
        v: WIRE_VERSION,
        kind,
        payload,
    })
    .map_err(|source| WireError::Encode { kind, source })
}

/// The message as envelope bytes.
pub fn encode(message: &Message) -> Result<Vec<u8>, WireError> {
    let k = kind(message);
    match message {
        Message::Telemetry(b) => write(k, &**b),
        Message::Session(e) => write(k, &**e),
        Message::Insight(i) => write(k, &**i),
        Message::Alert(a) => write(k, &**a),
        Message::Profile(p) => write(k, &**p),
        Message::StrategyJob(j) => write(k, &**j),
    }
}

fn read<T: serde::de::DeserializeOwned>(
    kind: &str,
    raw: &serde_json::value::RawValue,
) -> Result<T, WireError> {
    serde_json::from_str(raw.get()).map_err(|source| WireError::Malformed {
        kind: kind.to_string(),
        source,
    })
}

/// The message in envelope bytes.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let env: EnvelopeIn<'_> =
        serde_json::from_slice(bytes).map_err(|source| WireError::Malformed {
            kind: "envelope".to_string(),
            source,
        })?;
    if env.v != WIRE_VERSION {
        return Err(WireError::Version(env.v));
    }
    let k = env.kind.as_ref();
    let p = env.payload;
    Ok(match k {
        "telemetry" => {
            let b: TelemetryBatch = read(k, p)?;
            if !b.received_unix_ns.is_empty() && b.received_unix_ns.len() != b.samples.len() {
                return Err(WireError::Invalid {
                    kind: "telemetry",
                    reason: format!(
                        "{} samples but {} arrival instants",
                        b.samples.len(),
                        b.received_unix_ns.len()
                    ),
                });
            }
            Message::Telemetry(Arc::new(b))
        }
        "session" => Message::Session(Arc::new(read(k, p)?)),
        "insight" => Message::Insight(Arc::new(read(k, p)?)),
        "alert" => Message::Alert(Arc::new(read(k, p)?)),
        "profile" => Message::Profile(Arc::new(read(k, p)?)),
        "strategy_job" => Message::StrategyJob(Arc::new(read(k, p)?)),
        other => return Err(WireError::UnknownKind(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_bytes_are_typed_errors() {
        assert!(matches!(
            decode(b"not json"),
            Err(WireError::Malformed { .. })
        ));
        assert!(matches!(
            decode(br#"{"v":2,"kind":"insight","payload":{}}"#),
            Err(WireError::Version(2))
        ));
        assert!(matches!(
            decode(br#"{"v":1,"kind":"dance","payload":{}}"#),
            Err(WireError::UnknownKind(k)) if k == "dance"
        ));
        assert!(matches!(
            decode(br#"{"v":1,"kind":"insight","payload":{"lap":"x"}}"#),
            Err(WireError::Malformed { kind, .. }) if kind == "insight"
        ));
        let bad = br#"{"v":1,"kind":"telemetry","payload":{"samples":[],"received_unix_ns":[1]}}"#;
        assert!(matches!(decode(bad), Err(WireError::Invalid { .. })));
    }
}
