//! Deterministic random streams and the few samplers the generator needs.
//!
//! Every file is generated from its own stream keyed by (seed, source, submitter, year), so the
//! output does not depend on thread scheduling or on which other files are generated. The
//! samplers are written here rather than taken from a crate so that a dependency upgrade can
//! never silently change the bytes a seed produces.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A stable 64-bit hash of a sequence of keys (FNV-1a over bytes, then a SplitMix64 finaliser).
pub fn hash_keys(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    splitmix(h)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a hash, for seed-independent attributes of the world.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The stream for one (seed, source, submitter, year).
pub fn stream(seed: u64, source: &str, submitter: &str, year: i32) -> Stream {
    let key = hash_keys(&[
        &seed.to_le_bytes(),
        source.as_bytes(),
        submitter.as_bytes(),
        &year.to_le_bytes(),
    ]);
    Stream(ChaCha8Rng::seed_from_u64(key))
}

/// A random stream with samplers.
#[derive(Debug)]
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Bernoulli.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }

    /// Uniform integer in [lo, hi] (inclusive).
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.0.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Picks one element.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.int(0, xs.len() as i64 - 1) as usize]
    }

    /// Picks an index by weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f().max(1e-300);
        let u2 = self.f();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Log-normal with the given median and log-scale sigma.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Poisson: Knuth's product method below 30, a rounded normal approximation above (the
    /// counts here are synthetic, so the approximation's small skew does not matter).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let l = (-lambda).exp();
            let mut k = 0u64;
            let mut p = 1.0;
            loop {
                p *= self.f();
                if p <= l {
                    return k;
                }
                k += 1;
            }
        }
        (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_keyed_and_repeatable() {
        let draw = |s: &mut Stream| (0..5).map(|_| s.int(0, 1_000_000)).collect::<Vec<_>>();
        let a = draw(&mut stream(7, "coroner", "c1", 2024));
        assert_eq!(a, draw(&mut stream(7, "coroner", "c1", 2024)));
        assert_ne!(a, draw(&mut stream(8, "coroner", "c1", 2024)));
        assert_ne!(a, draw(&mut stream(7, "coroner", "c1", 2025)));
        assert_ne!(a, draw(&mut stream(7, "top", "c1", 2024)));
        // Keys are separated, so ("ab", "c") and ("a", "bc") differ.
        assert_ne!(hash_keys(&[b"ab", b"c"]), hash_keys(&[b"a", b"bc"]));
    }

    #[test]
    fn samplers_have_the_right_centre() {
        let mut s = stream(1, "t", "t", 0);
        let n = 20_000;
        let mean = |s: &mut Stream, f: &dyn Fn(&mut Stream) -> f64| {
            (0..n).map(|_| f(s)).sum::<f64>() / f64::from(n)
        };
        assert!((mean(&mut s, &|s| s.poisson(4.0) as f64) - 4.0).abs() < 0.1);
        assert!((mean(&mut s, &|s| s.poisson(400.0) as f64) - 400.0).abs() < 1.0);
        assert!(mean(&mut s, &|s| s.normal()).abs() < 0.03);
        let mut xs: Vec<f64> = (0..n).map(|_| s.lognormal(175.0, 0.7)).collect();
        xs.sort_by(f64::total_cmp);
        assert!(
            (xs[xs.len() / 2] - 175.0).abs() < 6.0,
            "median {}",
            xs[xs.len() / 2]
        );
        assert_eq!(s.poisson(0.0), 0);
    }
}
