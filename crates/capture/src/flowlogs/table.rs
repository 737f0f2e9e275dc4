//! Hash tables keyed by 5-tuples: IPv4 tuples packed into 16 bytes in an open-addressing
//! table with key and value in one slot (one cache miss per lookup), IPv6 in a std map.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::analysis::FlowKey;
use super::parse::Addr;

/// A folded-multiply hasher (every input bit reaches every output bit) for the IPv6 map;
/// FxHash leaves the bucket bits of tuples to a few input bits.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        let p = u128::from(self.0 ^ x) * 0x9e37_79b9_7f4a_7c15_u128;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }

    #[inline]
    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }

    #[inline]
    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }

    #[inline]
    fn finish(&self) -> u64 {
        // One more round so the last word is mixed into the high (tag) bits too.
        let p = u128::from(self.0) * 0xd6e8_feb8_6659_fd93_u128;
        (p as u64) ^ ((p >> 64) as u64)
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Linear probing over `(key, value)` slots. The flow tables are much larger than the
/// caches, so what costs is the number of cache lines a lookup touches: std's SwissTable
/// touches the control bytes and then the bucket (two misses), a slot here is one line
/// (sometimes two). Kept at most 5/8 full so probe runs stay short.
#[derive(Debug)]
struct V4Table<V> {
    slots: Vec<Option<((u64, u64), V)>>,
    len: usize,
    /// 64 - log2(slots.len()): the index is the hash's top bits.
    shift: u32,
}

impl<V> Default for V4Table<V> {
    fn default() -> Self {
        V4Table { slots: Vec::new(), len: 0, shift: 64 }
    }
}

impl<V> V4Table<V> {
    #[inline(always)]
    fn index(&self, k: (u64, u64)) -> usize {
        let h = fold(fold(k.0 ^ 0x243f_6a88_85a3_08d3, 0x9e37_79b9_7f4a_7c15) ^ k.1, 0xd6e8_feb8_6659_fd93);
        (h >> self.shift) as usize
    }

    /// The slot holding `k`, or the empty slot where it would go.
    #[inline]
    fn find(&self, k: (u64, u64)) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = self.index(k);
        loop {
            match &self.slots[i] {
                Some((key, _)) if *key != k => i = (i + 1) & mask,
                _ => return i,
            }
        }
    }

    #[inline]
    fn get(&self, k: (u64, u64)) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots[self.find(k)].as_ref().map(|(_, v)| v)
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, std::iter::repeat_with(|| None).take(cap).collect());
        self.shift = 64 - cap.trailing_zeros();
        for (k, v) in old.into_iter().flatten() {
            let i = self.find(k);
            self.slots[i] = Some((k, v));
        }
    }

    #[inline]
    fn upsert(&mut self, k: (u64, u64), max: usize, update: impl FnOnce(&mut V), make: impl FnOnce() -> V) -> bool {
        if !self.slots.is_empty() {
            let i = self.find(k);
            if let Some((_, v)) = &mut self.slots[i] {
                update(v);
                return true;
            }
        }
        if self.len >= max {
            return false;
        }
        if (self.len + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let i = self.find(k);
        self.slots[i] = Some((k, make()));
        self.len += 1;
        true
    }

    fn iter(&self) -> impl Iterator<Item = ((u64, u64), &V)> + '_ {
        self.slots.iter().flatten().map(|(k, v)| (*k, v))
    }
}

#[derive(Debug)]
pub(crate) struct FlowTable<V> {
    v4: V4Table<V>,
    v6: Map<FlowKey, V>,
}

impl<V> Default for FlowTable<V> {
    fn default() -> Self {
        FlowTable { v4: V4Table::default(), v6: Map::default() }
    }
}

#[inline]
fn pack(k: &FlowKey) -> Option<(u64, u64)> {
    let (s, d) = (k.src.as_v4()?, k.dst.as_v4()?);
    Some((
        (u64::from(s) << 32) | u64::from(d),
        (u64::from(k.src_port) << 24) | (u64::from(k.dst_port) << 8) | u64::from(k.protocol),
    ))
}

#[inline]
fn unpack((a, b): (u64, u64)) -> FlowKey {
    FlowKey {
        src: Addr::v4((a >> 32) as u32),
        dst: Addr::v4(a as u32),
        src_port: (b >> 24) as u16,
        dst_port: (b >> 8) as u16,
        protocol: b as u8,
    }
}

impl<V> FlowTable<V> {
    pub(crate) fn len(&self) -> usize {
        self.v4.len + self.v6.len()
    }

    #[inline]
    pub(crate) fn get(&self, k: &FlowKey) -> Option<&V> {
        match pack(k) {
            Some(p) => self.v4.get(p),
            None => self.v6.get(k),
        }
    }

    /// Updates the entry of `k`, or inserts `make()` when there is none and the table holds
    /// fewer than `max` entries; one hash lookup either way. Returns false when the table was
    /// full and `k` new (the caller counts it as untracked).
    #[inline]
    pub(crate) fn upsert(
        &mut self,
        k: FlowKey,
        max: usize,
        update: impl FnOnce(&mut V),
        make: impl FnOnce() -> V,
    ) -> bool {
        match pack(&k) {
            Some(p) => {
                let room = max.saturating_sub(self.v6.len());
                self.v4.upsert(p, room, update, make)
            }
            None => {
                use std::collections::hash_map::Entry;
                let full = self.len() >= max;
                match self.v6.entry(k) {
                    Entry::Occupied(mut o) => {
                        update(o.get_mut());
                        true
                    }
                    Entry::Vacant(_) if full => false,
                    Entry::Vacant(v) => {
                        v.insert(make());
                        true
                    }
                }
            }
        }
    }

    /// Every entry, IPv4 first (map order: callers sort).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (FlowKey, &V)> + '_ {
        self.v4.iter().map(|(p, v)| (unpack(p), v)).chain(self.v6.iter().map(|(k, v)| (*k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_keys_round_trip_and_v6_stays_apart() {
        let mut t = FlowTable::default();
        let k4 = FlowKey {
            src: Addr::v4(0x0a000001),
            dst: Addr::v4(0xc0a80102),
            src_port: 65535,
            dst_port: 53,
            protocol: 17,
        };
        let k6 = FlowKey { src: Addr(1), dst: Addr(2), src_port: 1, dst_port: 2, protocol: 6 };
        assert!(t.upsert(k4, 2, |_| unreachable!(), || 1));
        assert!(t.upsert(k6, 2, |_| unreachable!(), || 2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&k4), Some(&1));
        assert_eq!(t.get(&k4.reversed()), None);
        assert!(t.upsert(k6, 2, |v| *v += 1, || unreachable!()));
        // Full: a new key is refused, an existing one still updated.
        assert!(!t.upsert(k4.reversed(), 2, |_| unreachable!(), || 9));
        assert!(t.upsert(k4, 2, |v| *v += 10, || unreachable!()));
        let all: Vec<(FlowKey, i32)> = t.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(all, vec![(k4, 11), (k6, 3)]);
    }

    #[test]
    fn growth_keeps_every_entry() {
        let mut t = FlowTable::default();
        let key =
            |i: u32| FlowKey { src: Addr::v4(i), dst: Addr::v4(!i), src_port: i as u16, dst_port: 53, protocol: 17 };
        for i in 0..10_000u32 {
            assert!(t.upsert(key(i), usize::MAX, |_| unreachable!(), || i));
        }
        for i in 0..10_000u32 {
            assert!(t.upsert(key(i), usize::MAX, |v| *v += 1, || unreachable!()));
        }
        assert_eq!(t.len(), 10_000);
        assert!((0..10_000u32).all(|i| t.get(&key(i)) == Some(&(i + 1))));
        assert_eq!(t.get(&key(10_000)), None);
        assert_eq!(t.iter().count(), 10_000);
    }
}
