//! A small deterministic PRNG (SplitMix64): the generator must give the same bundle for
//! the same seed on every platform and release, so no external RNG crate is used.

/// SplitMix64: fast, statistically fine for test data, trivially reproducible.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

/// Streams, so every object kind draws from its own sequence: adding a field to pods
/// does not change the generated policies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Plan = 1,
    Namespace = 2,
    Node = 3,
    Pod = 4,
    Service = 5,
    Policy = 6,
    Host = 7,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(mix(seed ^ 0x6e65_7473_6c65_7574))
    }

    /// An independent generator for item `index` of `stream`, so each object is a pure
    /// function of (seed, stream, index) whatever order the files are written in.
    pub(crate) fn for_item(seed: u64, stream: Stream, index: u64) -> Rng {
        Rng(mix(mix(seed ^ (stream as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ index))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Multiply-shift: unbiased enough for test data and free of division.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice (the first one for an empty slice is a bug
    /// caught by the `'static` word lists never being empty).
    pub(crate) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or("x")
    }

    /// `len` characters of the alphabet Kubernetes uses for generated names.
    pub(crate) fn k8s_suffix(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..len)
            .map(|_| {
                let i = usize::try_from(self.below(ALPHABET.len() as u64)).unwrap_or(0);
                char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
            })
            .collect()
    }

    /// `len` lowercase hex digits.
    pub(crate) fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(len);
        s
    }

    /// A random (version 4 shaped) UUID, as Kubernetes puts in `metadata.uid`.
    pub(crate) fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    /// A locally administered unicast MAC address.
    pub(crate) fn mac(&mut self) -> String {
        let v = self.next_u64();
        let b = v.to_be_bytes();
        format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (b[2] & 0xfe) | 0x02, b[3], b[4], b[5], b[6], b[7])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_streams_differ() {
        let mut a = Rng::for_item(7, Stream::Pod, 3);
        let mut b = Rng::for_item(7, Stream::Pod, 3);
        let mut c = Rng::for_item(7, Stream::Policy, 3);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = r.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn identifiers_have_their_shapes() {
        let mut r = Rng::new(2);
        let uid = r.uuid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.as_bytes()[14], b'4');
        let mac = r.mac();
        assert_eq!(mac.len(), 17);
        let first = u8::from_str_radix(&mac[..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02, "locally administered unicast: {mac}");
        assert_eq!(r.hex(11).len(), 11);
        assert!(r.k8s_suffix(5).chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
