//! The engine's randomness: one generator, seeded by the host when it
//! builds the engine.
//!
//! Everything random the engine makes — object and space ids, identity and
//! device keys, handshake nonces — comes from an [`EngineRng`]. A host seeds
//! it from the operating system ([`EngineRng::from_os`]: `getrandom`, which
//! is `crypto.getRandomValues` in the browser); the simulator seeds it from
//! its run's seed, so a simulated run is reproducible from that one number.
//!
//! The generator is ChaCha20 (RustCrypto's `chacha20`, the cipher the crate
//! already uses for sealing): a cryptographically secure stream, so keys
//! drawn from an OS-seeded generator are as good as keys drawn from the OS.

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::Zeroizing;

use crate::data::{ObjectId, SpaceId};

/// The host's random source could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random source is unavailable; the engine cannot make keys or ids safely")]
pub struct RandomUnavailable;

/// The engine's random generator. Not `Clone`: two copies would repeat
/// each other's output; use [`fork`](Self::fork) for an independent one.
pub struct EngineRng(ChaCha20Rng);

impl std::fmt::Debug for EngineRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineRng(..)")
    }
}

impl EngineRng {
    /// A generator whose whole output is fixed by `seed` (the simulator,
    /// tests). Hosts use [`from_os`](Self::from_os).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        EngineRng(ChaCha20Rng::from_seed(seed))
    }

    /// A generator seeded from the operating system's random source.
    pub fn from_os() -> Result<Self, RandomUnavailable> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|_| RandomUnavailable)?;
        Ok(Self::from_seed(*seed))
    }

    /// A seed for a test or a simulated node, spread from a small number.
    pub fn seed_from_u64(n: u64) -> [u8; 32] {
        let mut rng = ChaCha20Rng::seed_from_u64(n);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        seed
    }

    /// An independent generator, seeded from this one.
    pub fn fork(&mut self) -> EngineRng {
        let mut seed = Zeroizing::new([0u8; 32]);
        self.fill(seed.as_mut());
        Self::from_seed(*seed)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        self.0.fill_bytes(out);
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.0.fill_bytes(&mut out);
        out
    }

    /// 32 bytes for a secret key, zeroized when dropped.
    pub fn secret_seed(&mut self) -> Zeroizing<[u8; 32]> {
        let mut seed = Zeroizing::new([0u8; 32]);
        self.0.fill_bytes(seed.as_mut());
        seed
    }

    /// This generator as a `rand_core` CSPRNG, for a crate that draws its
    /// own secrets from the generator it is given (SPAKE2's scalar).
    pub(crate) fn csprng(&mut self) -> &mut ChaCha20Rng {
        &mut self.0
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no value to return");
        let zone = u64::MAX - (u64::MAX - n + 1) % n;
        loop {
            let x = self.0.next_u64();
            if x <= zone {
                return x % n;
            }
        }
    }

    /// True with probability `p` (clamped to 0..=1).
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub fn object_id(&mut self) -> ObjectId {
        ObjectId::from_bytes(self.bytes())
    }

    pub fn space_id(&mut self) -> SpaceId {
        SpaceId::from_bytes(self.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let mut a = EngineRng::from_seed([1; 32]);
        let mut b = EngineRng::from_seed([1; 32]);
        let mut c = EngineRng::from_seed([2; 32]);
        let (x, y, z) = (a.bytes::<32>(), b.bytes::<32>(), c.bytes::<32>());
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_eq!(a.object_id(), b.object_id());
    }

    #[test]
    fn forks_are_independent_of_their_parent() {
        let mut a = EngineRng::from_seed([3; 32]);
        let mut child = a.fork();
        assert_ne!(a.bytes::<16>(), child.bytes::<16>());
    }

    #[test]
    fn below_stays_in_range_and_reaches_every_value() {
        let mut r = EngineRng::from_seed(EngineRng::seed_from_u64(7));
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.below(7) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn os_seeded_generators_differ() {
        let mut a = EngineRng::from_os().unwrap();
        let mut b = EngineRng::from_os().unwrap();
        assert_ne!(a.bytes::<32>(), b.bytes::<32>());
    }
}
