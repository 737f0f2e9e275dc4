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

#[inline(always)]
fn hash(k: (u64, u64)) -> u64 {
    fold(fold(k.0 ^ 0x243f_6a88_85a3_08d3, 0x9e37_79b9_7f4a_7c15) ^ k.1, 0xd6e8_feb8_6659_fd93)
}

/// A flow's value that can take in a later record of the same flow (the earlier one's
/// first-record fields win), so records can be applied later than they were read.
pub(crate) trait Merge: Copy {
    fn merge(&mut self, later: &Self);
}

/// log2 of the number of partitions: the top hash bits pick one. 128 measured 5-10 % faster
/// than 256 and 512 once writes and lookups were prefetched (probably: fewer buffer heads
/// compete for the L1 cache), and no slower than 64.
const PART_BITS: u32 = 7;
const PARTS: usize = 1 << PART_BITS;
/// Records held per partition before they are applied together, at least; a partition
/// holds up to half its entry count, so one drain touches much of the partition and its
/// lookups, prefetched a few records ahead, overlap.
const PENDING: usize = 128;
/// And at most (with 128 partitions: 80 MB of 40-byte records, 150 MB of 72-byte ones).
const MAX_PENDING: usize = 1 << 14;

/// log2 of the entries per block of `Blocks`.
const BLOCK_BITS: u32 = 10;

/// A growable array in fixed blocks: growing never copies or re-touches what is stored
/// (a `Vec` doubling copies everything into fresh pages, and page faults were a tenth of
/// the run time with millions of flows).
#[derive(Debug)]
struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Blocks<T> {
    fn new() -> Self {
        Blocks { blocks: Vec::new(), len: 0 }
    }

    #[inline]
    fn push(&mut self, item: T) {
        if self.len >> BLOCK_BITS == self.blocks.len() {
            // The first block grows like a Vec, so small tables stay small.
            let cap = if self.blocks.is_empty() { 16 } else { 1 << BLOCK_BITS };
            self.blocks.push(Vec::with_capacity(cap));
        }
        if let Some(block) = self.blocks.last_mut() {
            block.push(item);
            self.len += 1;
        }
    }

    #[inline]
    fn get(&self, i: usize) -> Option<&T> {
        self.blocks.get(i >> BLOCK_BITS)?.get(i & ((1 << BLOCK_BITS) - 1))
    }

    #[inline]
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.blocks.get_mut(i >> BLOCK_BITS)?.get_mut(i & ((1 << BLOCK_BITS) - 1))
    }

    fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.blocks.iter().flatten()
    }
}

/// Asks for the cache line holding `p` ahead of its use, without waiting for it. `p` may
/// point anywhere (into a buffer's spare capacity, say): nothing is read or written there.
///
/// Why unsafe: stable Rust has no safe prefetch (`core::hint::prefetch_*` is unstable), and
/// the only other way, loading the value, makes the CPU wait for it: that load was 18 % of
/// the flow-log run time, the prefetch instruction cut the run by 15-20 % (docs/flowlogs.md).
/// Safety: `_mm_prefetch` needs SSE, part of every x86_64 CPU, and a prefetch is a hint that
/// never faults, reads nothing into the program and writes nothing, whatever `p` is.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: see above: SSE is baseline on x86_64 and a prefetch has no memory effect, at
    // whatever address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// While applying waiting records: how far ahead the index slot of a record is prefetched,
/// and (once that slot has arrived) the entry it points to. The misses of a partition that
/// has left the caches then overlap instead of following one another.
const SLOT_AHEAD: usize = 16;
const ENTRY_AHEAD: usize = 8;

/// How many records ahead of the write position `Waiting` prefetches its buffer.
const AHEAD: usize = 6;

/// The records waiting in a partition, in input order. The buffer is reused from one drain
/// to the next, and the line a few records ahead of the write position is prefetched while
/// writing: with 128 partitions each write starting a new line would otherwise wait for
/// that line to come from memory (the stores filled up and stalled the parser). Kept apart
/// from the partitions' tables, 40 bytes each, so adding a record reads only this (whether
/// that is faster than the two cache lines of a whole partition was within the noise).
#[derive(Debug)]
struct Waiting<V> {
    buf: Vec<((u64, u64), V)>,
    len: u32,
    /// How many records may wait before they are applied.
    limit: u32,
    /// Whether the partition is in `V4Table::dirty`.
    listed: bool,
}

impl<V: Copy> Waiting<V> {
    fn new() -> Self {
        Waiting { buf: Vec::new(), len: 0, limit: PENDING as u32, listed: false }
    }

    #[inline(always)]
    fn push(&mut self, item: ((u64, u64), V)) {
        let len = self.len as usize;
        match self.buf.get_mut(len) {
            Some(slot) => *slot = item,
            None => self.buf.push(item),
        }
        self.len += 1;
        // Into the spare capacity too: the records beyond the last drain's are written
        // there, and each of those writes would wait for its line.
        if len + 1 + AHEAD < self.buf.capacity() {
            prefetch(self.buf.as_ptr().wrapping_add(len + 1 + AHEAD));
        }
    }

    fn as_slice(&self) -> &[((u64, u64), V)] {
        self.buf.get(..self.len as usize).unwrap_or(&[])
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    #[inline(always)]
    fn is_full(&self) -> bool {
        self.len >= self.limit
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// Room for `limit` records without growing while records are added, of the next power
    /// of two so that a slowly rising limit does not grow it at every drain. The buffer
    /// itself grows (while empty) rather than being replaced: the allocator can extend it
    /// in place or move a large one's pages, where a fresh buffer faults every page in
    /// again (with the index grown in place too: 190 k page faults per run down to 148 k).
    fn provide(&mut self, limit: usize) {
        self.limit = limit as u32;
        if self.buf.capacity() < limit && self.len == 0 {
            self.buf.clear();
            self.buf.reserve_exact(limit.next_power_of_two());
        }
    }
}

/// One partition: entries stored densely in arrival order, found through an index of
/// 8-byte slots (entry number and 32 hash bits, linear probing, at most 3/4 full); the
/// records waiting to be applied are in a `Waiting` of the table. Dense entries waste no
/// memory on empty slots and grow without rehashing (only the small index is rebuilt),
/// which keeps a partition small and the page faults of a large table down.
#[derive(Debug)]
struct Part<V> {
    entries: Blocks<((u64, u64), V)>,
    /// 0: empty; else (entry number + 1) << 32 | the hash's low 32 bits.
    index: Vec<u64>,
    /// 64 - log2(index.len()): the slot is the hash's bits below the partition bits.
    shift: u32,
    /// The waiting records' hashes while they are applied (reused).
    hashes: Vec<u64>,
}

impl<V: Merge> Part<V> {
    fn new() -> Self {
        Part { entries: Blocks::new(), index: Vec::new(), shift: 64, hashes: Vec::new() }
    }

    #[inline(always)]
    fn slot(&self, h: u64) -> usize {
        ((h << PART_BITS) >> self.shift) as usize
    }

    /// `Ok(entry number)` of `k`, or `Err(empty slot)` where it would go (the index is
    /// never full).
    #[inline]
    fn find(&self, k: (u64, u64), h: u64) -> Result<usize, usize> {
        let mask = self.index.len() - 1;
        let mut i = self.slot(h);
        loop {
            let s = self.index[i];
            if s == 0 {
                return Err(i);
            }
            if s as u32 == h as u32 {
                let e = (s >> 32) as usize - 1;
                if self.entries.get(e).is_some_and(|(key, _)| *key == k) {
                    return Ok(e);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Prefetches the index slot of `h`.
    #[inline(always)]
    fn prefetch_slot(&self, h: u64) {
        if !self.index.is_empty() {
            if let Some(s) = self.index.get(self.slot(h)) {
                prefetch(s);
            }
        }
    }

    /// Prefetches the entry the index slot of `h` points to (the slot should be in the
    /// cache by now), both ends of it: entries of 40 or 80 bytes straddle cache lines.
    #[inline(always)]
    fn prefetch_entry(&self, h: u64) {
        if self.index.is_empty() {
            return;
        }
        let Some(&s) = self.index.get(self.slot(h)) else { return };
        if let Some(e) = (s >> 32).checked_sub(1).and_then(|e| self.entries.get(e as usize)) {
            let e: *const ((u64, u64), V) = e;
            prefetch(e);
            prefetch(e.cast::<u8>().wrapping_add(std::mem::size_of::<((u64, u64), V)>() - 1));
        }
    }

    fn get(&self, k: (u64, u64), h: u64) -> Option<&V> {
        if self.index.is_empty() {
            return None;
        }
        self.find(k, h).ok().and_then(|e| self.entries.get(e)).map(|(_, v)| v)
    }

    /// Room in the index for `extra` more entries at most 3/4 full (probing compares the
    /// 32 hash bits first, and eight slots share a cache line, so long runs stay cheap).
    fn reserve(&mut self, extra: usize) {
        let need = self.entries.len + extra;
        if need * 4 <= self.index.len() * 3 {
            return;
        }
        let mut cap = self.index.len().max(64);
        while need * 4 > cap * 3 {
            cap *= 2;
        }
        // Grown rather than replaced: the allocator can extend it or move a large one's
        // pages, where a fresh zeroed index faulted all of them in again at every doubling.
        self.index.clear();
        self.index.resize(cap, 0);
        self.shift = 64 - cap.trailing_zeros();
        let mask = cap - 1;
        for (e, (k, _)) in self.entries.iter().enumerate() {
            let h = hash(*k);
            let mut i = self.slot(h);
            while self.index[i] != 0 {
                i = (i + 1) & mask;
            }
            self.index[i] = ((e as u64 + 1) << 32) | u64::from(h as u32);
        }
    }

    /// Updates or inserts one record now (the index has room); returns whether it inserted
    /// a new flow.
    #[inline]
    fn apply(&mut self, k: (u64, u64), h: u64, v: &V) -> bool {
        match self.find(k, h) {
            Ok(e) => {
                if let Some((_, old)) = self.entries.get_mut(e) {
                    old.merge(v);
                }
                false
            }
            Err(i) => {
                self.index[i] = ((self.entries.len as u64 + 1) << 32) | u64::from(h as u32);
                self.entries.push((k, *v));
                true
            }
        }
    }

    /// Applies the partition's waiting records in input order and empties `pending`;
    /// returns how many new flows they made. When the table is `full`, records of flows it
    /// does not hold are not inserted but counted in `untracked`.
    fn drain(&mut self, pending: &mut Waiting<V>, full: bool, untracked: &mut u64) -> usize {
        let before = self.entries.len;
        if !full {
            self.reserve(pending.len());
        }
        let recs = pending.as_slice();
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.clear();
        hashes.extend(recs.iter().map(|(k, _)| hash(*k)));
        let empty = self.index.is_empty();
        for (i, ((k, v), &h)) in recs.iter().zip(&hashes).enumerate() {
            if !empty {
                if let Some(&h2) = hashes.get(i + SLOT_AHEAD) {
                    prefetch(&self.index[self.slot(h2)]);
                }
                if let Some(&h1) = hashes.get(i + ENTRY_AHEAD) {
                    self.prefetch_entry(h1);
                }
            }
            if full {
                let found = if empty { Err(0) } else { self.find(*k, h) };
                match found {
                    Ok(e) => {
                        if let Some((_, old)) = self.entries.get_mut(e) {
                            old.merge(v);
                        }
                    }
                    Err(_) => *untracked += 1,
                }
            } else {
                self.apply(*k, h, v);
            }
        }
        self.hashes = hashes;
        pending.clear();
        pending.provide((self.entries.len / 2).clamp(PENDING, MAX_PENDING));
        self.entries.len - before
    }
}

/// IPv4 flows in partitions. Records are not applied one by one: that costs a cache and TLB
/// miss each once the table outgrows the caches. They wait in their partition and are
/// applied a batch at a time, so the misses overlap and stay within one partition's pages.
/// Exact, as record-by-record insertion in input order: a record is buffered only while
/// every buffered record is sure to fit under the flow limit; otherwise everything waiting
/// is applied first. Once the table holds the limit it is full for good (entries are never
/// removed), so from then on records are buffered again and applied as updates, or
/// counted as untracked when their flow is not in the table.
#[derive(Debug)]
struct V4Table<V> {
    parts: Vec<Part<V>>,
    /// Each partition's waiting records.
    waiting: Vec<Waiting<V>>,
    /// Applied entries.
    len: usize,
    /// Records waiting in partitions.
    pending: usize,
    /// Partitions that may have records waiting, so flushing does not walk all of them.
    dirty: Vec<u32>,
    /// The table reached the flow limit: waiting records only update.
    full: bool,
    /// Records not applied because their flow was new and the table full.
    untracked: u64,
}

impl<V> Default for V4Table<V> {
    fn default() -> Self {
        V4Table {
            parts: Vec::new(),
            waiting: Vec::new(),
            len: 0,
            pending: 0,
            dirty: Vec::new(),
            full: false,
            untracked: 0,
        }
    }
}

impl<V: Merge> V4Table<V> {
    #[inline(always)]
    fn part_of(h: u64) -> usize {
        (h >> (64 - PART_BITS)) as usize
    }

    fn get(&self, k: (u64, u64)) -> Option<&V> {
        debug_assert_eq!(self.pending, 0, "flow table read before flush");
        let h = hash(k);
        self.parts.get(Self::part_of(h))?.get(k, h)
    }

    /// Looks many keys up, calling `found` for each one present, partition by partition:
    /// one key after another would cost a cache and TLB miss each, while a partition's index
    /// stays in the cache as its keys are looked up and its entries are prefetched.
    fn lookup_each<T: Copy>(
        &self,
        keys: impl Iterator<Item = ((u64, u64), T)>,
        mut found: impl FnMut((u64, u64), T, &V),
    ) {
        debug_assert_eq!(self.pending, 0, "flow table read before flush");
        let mut buckets: Vec<Vec<_>> = std::iter::repeat_with(Vec::new).take(PARTS).collect();
        for (k, t) in keys {
            let h = hash(k);
            buckets[Self::part_of(h)].push((k, h, t));
        }
        for (part, bucket) in self.parts.iter().zip(&buckets) {
            for (j, &(k, h, t)) in bucket.iter().enumerate() {
                if let Some(&(_, ahead, _)) = bucket.get(j + SLOT_AHEAD) {
                    part.prefetch_slot(ahead);
                }
                if let Some(&(_, ahead, _)) = bucket.get(j + ENTRY_AHEAD) {
                    part.prefetch_entry(ahead);
                }
                if let Some(v) = part.get(k, h) {
                    found(k, t, v);
                }
            }
        }
    }

    /// Applies every waiting record.
    fn flush(&mut self) {
        for p in std::mem::take(&mut self.dirty) {
            if let (Some(part), Some(waiting)) = (self.parts.get_mut(p as usize), self.waiting.get_mut(p as usize)) {
                waiting.listed = false;
                self.pending -= waiting.len();
                self.len += part.drain(waiting, self.full, &mut self.untracked);
            }
        }
    }

    /// Adds one record of flow `k`; when the table holds `room` flows and `k` is new, the
    /// record is counted in `untracked` instead (possibly later, when it is applied).
    #[inline]
    fn add(&mut self, k: (u64, u64), v: V, room: usize) {
        if self.parts.is_empty() {
            self.parts = std::iter::repeat_with(Part::new).take(PARTS).collect();
            self.waiting = std::iter::repeat_with(Waiting::new).take(PARTS).collect();
        }
        if !self.full && self.len + self.pending >= room {
            // This record might not fit: settle what is waiting to know.
            self.flush();
            self.full = self.len >= room;
        }
        let h = hash(k);
        let p = Self::part_of(h);
        let waiting = &mut self.waiting[p];
        if !waiting.listed {
            waiting.listed = true;
            self.dirty.push(p as u32);
        }
        waiting.push((k, v));
        self.pending += 1;
        if waiting.is_full() {
            self.pending -= waiting.len();
            if let Some(part) = self.parts.get_mut(p) {
                self.len += part.drain(waiting, self.full, &mut self.untracked);
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = ((u64, u64), &V)> + '_ {
        debug_assert_eq!(self.pending, 0, "flow table read before flush");
        self.parts.iter().flat_map(|p| p.entries.iter().map(|(k, v)| (*k, v)))
    }
}

#[derive(Debug)]
pub(crate) struct FlowTable<V> {
    v4: V4Table<V>,
    v6: Map<FlowKey, V>,
    v6_untracked: u64,
}

impl<V> Default for FlowTable<V> {
    fn default() -> Self {
        FlowTable { v4: V4Table::default(), v6: Map::default(), v6_untracked: 0 }
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

impl<V: Merge> FlowTable<V> {
    pub(crate) fn len(&self) -> usize {
        self.v4.len + self.v4.pending + self.v6.len()
    }

    /// Applies every record still waiting; `get` and `iter` see only applied records.
    pub(crate) fn flush(&mut self) {
        self.v4.flush();
    }

    #[inline]
    pub(crate) fn get(&self, k: &FlowKey) -> Option<&V> {
        match pack(k) {
            Some(p) => self.v4.get(p),
            None => self.v6.get(k),
        }
    }

    /// Looks many keys up, calling `found` for each one present, in no particular order
    /// (see `V4Table::lookup_each`).
    pub(crate) fn lookup_each<T: Copy>(
        &self,
        keys: impl Iterator<Item = (FlowKey, T)>,
        mut found: impl FnMut(FlowKey, T, &V),
    ) {
        let mut v4 = Vec::new();
        for (k, t) in keys {
            match pack(&k) {
                Some(p) => v4.push((p, t)),
                None => {
                    if let Some(v) = self.v6.get(&k) {
                        found(k, t, v);
                    }
                }
            }
        }
        self.v4.lookup_each(v4.into_iter(), |p, t, v| found(unpack(p), t, v));
    }

    /// Adds one record of flow `k`: merged into the flow's entry, or a new entry when the
    /// table holds fewer than `max` flows, else counted as untracked. The record may be
    /// applied later (`flush`).
    #[inline]
    pub(crate) fn add(&mut self, k: FlowKey, max: usize, v: V) {
        match pack(&k) {
            Some(p) => {
                let room = max.saturating_sub(self.v6.len());
                self.v4.add(p, v, room);
            }
            None => {
                if let Some(old) = self.v6.get_mut(&k) {
                    old.merge(&v);
                    return;
                }
                if self.len() >= max {
                    // Waiting IPv4 records may be updates rather than new flows.
                    self.v4.flush();
                    if self.len() >= max {
                        self.v6_untracked += 1;
                        return;
                    }
                }
                self.v6.insert(k, v);
            }
        }
    }

    /// Records not kept because their flow was new and the table full (after `flush`).
    pub(crate) fn untracked(&self) -> u64 {
        debug_assert_eq!(self.v4.pending, 0, "flow table read before flush");
        self.v4.untracked + self.v6_untracked
    }

    /// Every applied entry, IPv4 first (map order: callers sort).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (FlowKey, &V)> + '_ {
        self.v4.iter().map(|(p, v)| (unpack(p), v)).chain(self.v6.iter().map(|(k, v)| (*k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test value: the first record's tag and the number of records.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Count {
        first: u32,
        n: u32,
    }

    impl Merge for Count {
        fn merge(&mut self, later: &Self) {
            self.n += later.n;
        }
    }

    fn one(first: u32) -> Count {
        Count { first, n: 1 }
    }

    fn sorted(t: &FlowTable<Count>) -> Vec<(FlowKey, Count)> {
        let mut v: Vec<(FlowKey, Count)> = t.iter().map(|(k, v)| (k, *v)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

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
        t.add(k4, 2, one(1));
        t.add(k6, 2, one(2));
        assert_eq!(t.len(), 2);
        t.add(k6, 2, one(3));
        // Full: a new key is refused, an existing one still updated.
        t.add(k4.reversed(), 2, one(4));
        t.add(k4, 2, one(5));
        t.flush();
        assert_eq!(t.untracked(), 1);
        assert_eq!(t.get(&k4), Some(&Count { first: 1, n: 2 }));
        assert_eq!(t.get(&k4.reversed()), None);
        let all: Vec<(FlowKey, Count)> = t.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(all, vec![(k4, Count { first: 1, n: 2 }), (k6, Count { first: 2, n: 2 })]);
    }

    #[test]
    fn growth_keeps_every_entry() {
        let mut t = FlowTable::default();
        let key =
            |i: u32| FlowKey { src: Addr::v4(i), dst: Addr::v4(!i), src_port: i as u16, dst_port: 53, protocol: 17 };
        for round in 0..3 {
            for i in 0..100_000u32 {
                t.add(key(i), usize::MAX, one(i + round));
            }
        }
        t.flush();
        assert_eq!(t.untracked(), 0);
        assert_eq!(t.len(), 100_000);
        assert!((0..100_000u32).all(|i| t.get(&key(i)) == Some(&Count { first: i, n: 3 })));
        assert_eq!(t.get(&key(100_000)), None);
        assert_eq!(t.iter().count(), 100_000);
    }

    /// The buffered, partitioned table gives exactly what applying records one by one in
    /// input order gives, including which flows get in under the limit and which records
    /// are refused.
    #[test]
    fn same_as_record_by_record_under_every_limit() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (flows, records, max) in [
            (50, 400, 10),
            (3_000, 20_000, 1_000),
            (3_000, 20_000, 2_999),
            (20_000, 60_000, 19_990),
            (500, 5_000, 0),
            // Partitions of hundreds of flows: buffers above the minimum, grown while in use.
            (100_000, 400_000, usize::MAX),
            (100_000, 400_000, 60_000),
        ] {
            let keys: Vec<FlowKey> = (0..flows)
                .map(|i: u32| {
                    let r = next();
                    let (src, dst) = if r % 7 == 0 {
                        (Addr(u128::from(r) << 64 | u128::from(i)), Addr(2))
                    } else {
                        (Addr::v4(r as u32), Addr::v4(i))
                    };
                    FlowKey { src, dst, src_port: (r >> 32) as u16, dst_port: 443, protocol: 6 }
                })
                .collect();
            let mut table = FlowTable::default();
            let mut reference: std::collections::HashMap<FlowKey, Count> = Default::default();
            let mut untracked = 0u64;
            for n in 0..records {
                let k = keys[(next() % u64::from(flows)) as usize];
                let full = reference.len() >= max;
                match reference.entry(k) {
                    std::collections::hash_map::Entry::Occupied(mut c) => {
                        c.get_mut().n += 1;
                    }
                    std::collections::hash_map::Entry::Vacant(_) if full => {
                        untracked += 1;
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(one(n));
                    }
                }
                table.add(k, max, one(n));
            }
            table.flush();
            assert_eq!(table.untracked(), untracked, "max {max}");
            let mut want: Vec<(FlowKey, Count)> = reference.into_iter().collect();
            want.sort_by_key(|(k, _)| *k);
            assert_eq!(sorted(&table), want, "max {max}");
        }
    }
}
