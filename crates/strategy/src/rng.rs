//! Fast random numbers for the simulation core: xoshiro256++ (Blackman & Vigna) seeded through
//! SplitMix64, both from `rand_xoshiro` (the generator family `sim` uses too), a ziggurat normal
//! sampler (Marsaglia & Tsang, in Doornik's 128-layer ZIGNOR form) and the Fisk (log-logistic)
//! draw by inversion.
//!
//! Streams are derived from `(seed, iteration index)` so every Monte Carlo iteration has its own
//! reproducible stream, whatever thread or chunk runs it (common random numbers across plans).
//! The first outputs of each generator are pinned by the tests below: a dependency upgrade that
//! changed them would change every figure the engine reports for a given seed.

use rand_xoshiro::rand_core::{Rng, SeedableRng};
use rand_xoshiro::{SplitMix64, Xoshiro256PlusPlus};
use std::sync::OnceLock;

/// Mixes a seed and an index into one 64-bit stream key.
#[inline]
pub fn stream_key(seed: u64, index: u64) -> u64 {
    let s = seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    SplitMix64::seed_from_u64(s).next_u64() ^ index
}

/// Uniforms in the open interval (0, 1) from a SplitMix64 stream started at a key: a few draws
/// keyed by a value rather than taken from a race's stream (the standstill of one car's stop,
/// whatever the plans before it drew).
#[derive(Debug, Clone)]
pub struct KeyedUniforms(SplitMix64);

impl KeyedUniforms {
    /// The stream for `key`.
    #[inline]
    pub fn new(key: u64) -> Self {
        Self(SplitMix64::seed_from_u64(key))
    }

    /// The next uniform in (0, 1).
    #[inline(always)]
    pub fn uniform_open(&mut self) -> f64 {
        ((self.0.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

/// xoshiro256++ with the draws the race core makes.
#[derive(Debug, Clone)]
pub struct Xoshiro256pp(Xoshiro256PlusPlus);

impl Xoshiro256pp {
    /// Seeds the four words from SplitMix64 (never all zero).
    pub fn seed_from_u64(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// Next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    #[inline(always)]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in the open interval (0, 1).
    #[inline(always)]
    pub fn uniform_open(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `lo..=hi` (requires lo <= hi).
    #[inline]
    pub fn range_inclusive(&mut self, lo: u32, hi: u32) -> u32 {
        let span = (hi - lo) as u64 + 1;
        lo + ((self.next_u64() >> 32).wrapping_mul(span) >> 32) as u32
    }

    /// Standard normal draw (ziggurat).
    #[inline(always)]
    pub fn normal(&mut self, z: &Ziggurat) -> f64 {
        z.sample(self)
    }
}

const ZIG_C: usize = 128;
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

/// Ziggurat tables for the standard normal.
#[derive(Debug)]
pub struct Ziggurat {
    x: [f64; ZIG_C + 1],
    r: [f64; ZIG_C],
}

static ZIGGURAT: OnceLock<Ziggurat> = OnceLock::new();

impl Ziggurat {
    /// The shared tables (built once).
    pub fn get() -> &'static Ziggurat {
        ZIGGURAT.get_or_init(Ziggurat::build)
    }

    fn build() -> Ziggurat {
        let mut x = [0.0; ZIG_C + 1];
        let mut r = [0.0; ZIG_C];
        let mut f = (-0.5 * ZIG_R * ZIG_R).exp();
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        x[ZIG_C] = 0.0;
        for i in 2..ZIG_C {
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + f).ln()).sqrt();
            f = (-0.5 * x[i] * x[i]).exp();
        }
        for i in 0..ZIG_C {
            r[i] = x[i + 1] / x[i];
        }
        Ziggurat { x, r }
    }

    /// One standard normal draw.
    #[inline(always)]
    pub fn sample(&self, rng: &mut Xoshiro256pp) -> f64 {
        loop {
            let bits = rng.next_u64();
            let i = (bits & 0x7F) as usize;
            // 53 high bits -> u in [-1, 1)
            let u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0;
            // i < 128 so both indexings are in bounds (arrays of 128 and 129).
            let xi = self.x[i];
            if u.abs() < self.r[i] {
                return u * xi;
            }
            if i == 0 {
                // By value so the caller's generator never has its address taken (it can stay
                // in registers in the hot loop).
                let (x, r) = self.tail(rng.clone(), u < 0.0);
                *rng = r;
                return x;
            }
            let x = u * xi;
            let xi1 = self.x[i + 1];
            let f0 = (-0.5 * (xi * xi - x * x)).exp();
            let f1 = (-0.5 * (xi1 * xi1 - x * x)).exp();
            if f1 + rng.uniform() * (f0 - f1) < 1.0 {
                return x;
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn tail(&self, mut rng: Xoshiro256pp, negative: bool) -> (f64, Xoshiro256pp) {
        loop {
            let x = rng.uniform_open().ln() / ZIG_R;
            let y = rng.uniform_open().ln();
            if -2.0 * y >= x * x {
                return (if negative { x - ZIG_R } else { ZIG_R - x }, rng);
            }
        }
    }
}

/// Fisk (log-logistic) draw by inversion: `scale * (u / (1 - u))^(1 / shape)`.
#[inline]
pub fn fisk(u: f64, shape: f64, scale: f64) -> f64 {
    scale * (u / (1.0 - u)).powf(1.0 / shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_unit_moments() {
        let z = Ziggurat::get();
        let mut r = Xoshiro256pp::seed_from_u64(7);
        let n = 400_000;
        let (mut s1, mut s2, mut s4, mut tail) = (0.0, 0.0, 0.0, 0usize);
        for _ in 0..n {
            let x = r.normal(z);
            s1 += x;
            s2 += x * x;
            s4 += x * x * x * x;
            if x.abs() > 1.96 {
                tail += 1;
            }
        }
        let n = n as f64;
        assert!((s1 / n).abs() < 0.01, "mean {}", s1 / n);
        assert!((s2 / n - 1.0).abs() < 0.01, "var {}", s2 / n);
        assert!((s4 / n - 3.0).abs() < 0.06, "kurtosis {}", s4 / n);
        assert!(
            (tail as f64 / n - 0.05).abs() < 0.002,
            "tail {}",
            tail as f64 / n
        );
    }

    #[test]
    fn normal_quantiles_match() {
        let z = Ziggurat::get();
        let mut r = Xoshiro256pp::seed_from_u64(9);
        let n = 200_000;
        let mut v: Vec<f64> = (0..n).map(|_| r.normal(z).abs()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        // |N(0,1)| quantiles: 25 % 0.3186, 50 % 0.6745, 90 % 1.6449
        for (q, want) in [(0.25, 0.3186), (0.5, 0.6745), (0.9, 1.6449)] {
            let got = v[(q * n as f64) as usize];
            assert!((got - want).abs() < 0.01, "q{q}: {got} vs {want}");
        }
    }

    #[test]
    fn uniform_and_range() {
        let mut r = Xoshiro256pp::seed_from_u64(1);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            let k = r.range_inclusive(1, 4);
            assert!((1..=4).contains(&k));
            counts[(k - 1) as usize] += 1;
        }
        for c in counts {
            assert!((c as i64 - 10_000).abs() < 500, "{counts:?}");
        }
        let m: f64 = (0..100_000).map(|_| r.uniform()).sum::<f64>() / 100_000.0;
        assert!((m - 0.5).abs() < 0.005);
    }

    /// The streams of the hand-written generator this module used before `rand_xoshiro`: the
    /// engine's figures for a given seed depend on them.
    #[test]
    fn streams_are_pinned() {
        let mut r = Xoshiro256pp::seed_from_u64(7);
        let v: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(
            v,
            [
                1021219803524665661,
                3174977118032272916,
                13236943193235544178,
                7880630202246103356
            ]
        );
        let key = stream_key(42, 3);
        assert_eq!(key, 5632914758302621590);
        let mut r = Xoshiro256pp::seed_from_u64(key);
        let v: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(
            v,
            [
                14692538237724455795,
                12097882467763927586,
                16026149753918634881,
                8630292955556020803
            ]
        );
        // SplitMix64 from 99: 4824385676517010403, 583982616703494564, 15398599001720869627.
        let mut k = KeyedUniforms::new(99);
        let v: Vec<f64> = (0..3).map(|_| k.uniform_open()).collect();
        let want = [
            4824385676517010403u64,
            583982616703494564,
            15398599001720869627,
        ]
        .map(|b| ((b >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64));
        assert_eq!(v, want);
    }

    #[test]
    fn fisk_median_is_scale() {
        assert!((fisk(0.5, 4.0, 0.6) - 0.6).abs() < 1e-12);
    }
}
