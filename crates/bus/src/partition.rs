//! Which partition a session's telemetry lives in: FNV-1a (64 bit) of the session id modulo
//! the partition count. Stable across processes, machines and releases (unlike std's
//! randomly seeded hasher), so every publisher and worker agrees.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bit, of `bytes`.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The partition (0..`partitions`) of a session; 0 when `partitions` is 0.
pub fn of_session(session_id: &str, partitions: usize) -> usize {
    if partitions == 0 {
        return 0;
    }
    // `partitions` fits in u64 and the remainder is below it, so both casts are lossless.
    (fnv1a_64(session_id.as_bytes()) % partitions as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_values() {
        // Published FNV-1a 64 test vectors: a change here moves every session's partition.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(of_session("anything", 0), 0);
        assert!((0..100).all(|i| of_session(&format!("s{i}"), 8) < 8));
    }
}
