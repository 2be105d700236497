//! A tiny seeded generator (SplitMix64) and a stable hash, for the simulated provider, the
//! fake Stripe's faults and the retry jitter: deterministic for a seed, on every platform and
//! every version of every dependency (unlike `std`'s hasher or `rand`'s `StdRng`).

/// SplitMix64 (Steele, Lea and Flood): one 64-bit state, good enough for jitter and fault
/// injection, not for secrets.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `lo..=hi` (`lo` if `hi < lo`). The modulo bias is below 2⁻³² for the
    /// ranges used here (milliseconds, parts per million).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        lo + self.next_u64() % (span + 1)
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of `parts` under `seed` (FNV-1a, then SplitMix's finaliser), used to
/// derive a per-call generator from what identifies the call, so the outcome does not depend
/// on how concurrent calls interleave.
pub fn stable_hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ mix(seed);
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separates ["ab","c"] from ["a","bc"].
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_other_seed_other_sequence() {
        let a: Vec<u64> = (0..4).scan(SplitMix64::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).scan(SplitMix64::new(7), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..4).scan(SplitMix64::new(8), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn between_stays_in_bounds_and_reaches_both_ends() {
        let mut r = SplitMix64::new(1);
        let draws: Vec<u64> = (0..1_000).map(|_| r.between(3, 6)).collect();
        assert!(draws.iter().all(|d| (3..=6).contains(d)));
        assert!(draws.contains(&3) && draws.contains(&6));
        assert_eq!(r.between(5, 5), 5);
        assert_eq!(r.between(9, 2), 9);
    }

    #[test]
    fn hash_separates_parts_and_seeds() {
        assert_ne!(stable_hash(0, &[b"ab", b"c"]), stable_hash(0, &[b"a", b"bc"]));
        assert_ne!(stable_hash(0, &[b"x"]), stable_hash(1, &[b"x"]));
        assert_eq!(stable_hash(3, &[b"x"]), stable_hash(3, &[b"x"]));
    }
}
