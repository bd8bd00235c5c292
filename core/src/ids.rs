//! External ids (bigint or text, as the source table has them) ↔ dense indices `0..n`.

use crate::slab::Slab;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fx-style hashing (as in rustc): ids are looked up on every ranking call, and SipHash's
/// DoS resistance buys nothing for ids that come from the model's own training data.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(SEED);
    }
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type IdHash = BuildHasherDefault<IdHasher>;

/// The SQL type family of a model's ids, fixed at training time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    BigInt,
    Text,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::BigInt => "bigint",
            IdKind::Text => "text",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bigint" => Some(IdKind::BigInt),
            "text" => Some(IdKind::Text),
            _ => None,
        }
    }
}

/// A borrowed external id, as a caller passes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRef<'a> {
    Int(i64),
    Text(&'a str),
}

/// Assigns dense indices to external ids in first-seen order, and maps back.
#[derive(Debug, Clone, PartialEq)]
pub enum IdMap {
    Int { to_index: HashMap<i64, u32, IdHash>, ids: Vec<i64> },
    Text { to_index: HashMap<Box<str>, u32, IdHash>, ids: Vec<Box<str>> },
}

impl IdMap {
    pub fn new(kind: IdKind) -> Self {
        match kind {
            IdKind::BigInt => IdMap::Int { to_index: HashMap::default(), ids: Vec::new() },
            IdKind::Text => IdMap::Text { to_index: HashMap::default(), ids: Vec::new() },
        }
    }

    /// Ids 0..n without a reverse index: for training, which only needs the counts.
    pub fn placeholder(n: usize) -> Self {
        IdMap::Int { to_index: HashMap::default(), ids: (0..n as i64).collect() }
    }

    pub fn from_ints(ids: Vec<i64>) -> Self {
        let to_index = ids.iter().enumerate().map(|(i, &id)| (id, i as u32)).collect();
        IdMap::Int { to_index, ids }
    }

    pub fn from_texts(ids: Vec<Box<str>>) -> Self {
        let to_index = ids.iter().enumerate().map(|(i, id)| (id.clone(), i as u32)).collect();
        IdMap::Text { to_index, ids }
    }

    pub fn kind(&self) -> IdKind {
        match self {
            IdMap::Int { .. } => IdKind::BigInt,
            IdMap::Text { .. } => IdKind::Text,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            IdMap::Int { ids, .. } => ids.len(),
            IdMap::Text { ids, .. } => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index of `id`, inserting it if new. The kind must match the map's.
    pub fn intern_int(&mut self, id: i64) -> u32 {
        match self {
            IdMap::Int { to_index, ids } => *to_index.entry(id).or_insert_with(|| {
                ids.push(id);
                (ids.len() - 1) as u32
            }),
            IdMap::Text { .. } => panic!("intern_int on a text id map"),
        }
    }

    pub fn intern_text(&mut self, id: &str) -> u32 {
        match self {
            IdMap::Text { to_index, ids } => {
                if let Some(&i) = to_index.get(id) {
                    return i;
                }
                let boxed: Box<str> = id.into();
                ids.push(boxed.clone());
                let i = (ids.len() - 1) as u32;
                to_index.insert(boxed, i);
                i
            }
            IdMap::Int { .. } => panic!("intern_text on a bigint id map"),
        }
    }

    /// Looks an id up, converting across kinds the way SQL would (a bigint model queried with
    /// '42' finds 42; a text model queried with 42 finds '42').
    pub fn get(&self, id: IdRef<'_>) -> Option<u32> {
        match (self, id) {
            (IdMap::Int { to_index, .. }, IdRef::Int(v)) => to_index.get(&v).copied(),
            (IdMap::Int { to_index, .. }, IdRef::Text(s)) => {
                s.trim().parse::<i64>().ok().and_then(|v| to_index.get(&v).copied())
            }
            (IdMap::Text { to_index, .. }, IdRef::Text(s)) => to_index.get(s).copied(),
            (IdMap::Text { to_index, .. }, IdRef::Int(v)) => to_index.get(v.to_string().as_str()).copied(),
        }
    }

    /// The external id of a dense index, as bigint (None for a text id that is not a number).
    pub fn int_at(&self, index: u32) -> Option<i64> {
        match self {
            IdMap::Int { ids, .. } => Some(ids[index as usize]),
            IdMap::Text { ids, .. } => ids[index as usize].parse().ok(),
        }
    }

    /// The external id of a dense index, as text.
    pub fn text_at(&self, index: u32) -> String {
        match self {
            IdMap::Int { ids, .. } => ids[index as usize].to_string(),
            IdMap::Text { ids, .. } => ids[index as usize].to_string(),
        }
    }
}

/// A direct-address table for bigint ids that are nearly dense (serial keys usually are): one
/// bounds check and one load per lookup instead of a hash probe, for every candidate of every
/// ranking call. Built only when it costs at most a few words per id.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLookup {
    first: i64,
    index: Vec<u32>,
}

impl DenseLookup {
    const ABSENT: u32 = u32::MAX;

    pub fn build(map: &IdMap) -> Option<Self> {
        let IdMap::Int { ids, .. } = map else { return None };
        let (&first, &last) = (ids.iter().min()?, ids.iter().max()?);
        let span = (last as i128 - first as i128 + 1) as u128;
        if span > (8 * ids.len() + 4096) as u128 {
            return None;
        }
        let mut index = vec![Self::ABSENT; span as usize];
        for (i, &id) in ids.iter().enumerate() {
            index[(id - first) as usize] = i as u32;
        }
        Some(Self { first, index })
    }

    #[inline]
    pub fn get(&self, id: i64) -> Option<u32> {
        // Below `first` wraps to a huge offset, so one comparison covers both ends.
        let offset = id.wrapping_sub(self.first) as u64;
        self.index.get(usize::try_from(offset).ok()?).copied().filter(|&i| i != Self::ABSENT)
    }

    pub fn memory_bytes(&self) -> usize {
        self.index.len() * 4
    }
}

/// A read-only id index laid out as flat arrays, so it can be used in place from a mapped
/// serving image: ids by index, plus an open-addressing table (or a [`DenseLookup`]-style
/// direct table for nearly dense bigint ids) from id to index. Looks ids up exactly as
/// [`IdMap::get`] does, converting across kinds.
#[derive(Debug, Clone, Default)]
pub struct IdIndex {
    pub(crate) text: bool,
    /// Bigint ids by index (empty for text ids).
    pub(crate) ints: Slab<i64>,
    /// Text ids: byte ranges `offsets[i]..offsets[i + 1]` of `bytes` (empty for bigint ids).
    pub(crate) offsets: Slab<u64>,
    pub(crate) bytes: Slab<u8>,
    /// Open addressing: a power-of-two table of `index + 1` (0 = empty), probed linearly from
    /// the id's hash; empty when `dense` is used instead.
    pub(crate) slots: Slab<u32>,
    /// Direct table: `dense[id - dense_first]` is the index (u32::MAX = absent).
    pub(crate) dense_first: i64,
    pub(crate) dense: Slab<u32>,
}

fn hash_int(v: i64) -> u64 {
    let mut h = IdHasher::default();
    h.write_i64(v);
    h.finish()
}

fn hash_text(s: &[u8]) -> u64 {
    let mut h = IdHasher::default();
    h.write(s);
    h.write_usize(s.len());
    h.finish()
}

impl IdIndex {
    pub fn from_map(map: &IdMap) -> Self {
        let n = map.len();
        let mut index = IdIndex { text: map.kind() == IdKind::Text, ..Default::default() };
        match map {
            IdMap::Int { ids, .. } => {
                index.ints = ids.clone().into();
                if let Some(d) = DenseLookup::build(map) {
                    index.dense_first = d.first;
                    index.dense = d.index.into();
                    return index;
                }
            }
            IdMap::Text { ids, .. } => {
                let mut offsets = Vec::with_capacity(n + 1);
                let mut bytes = Vec::new();
                offsets.push(0u64);
                for id in ids {
                    bytes.extend_from_slice(id.as_bytes());
                    offsets.push(bytes.len() as u64);
                }
                index.offsets = offsets.into();
                index.bytes = bytes.into();
            }
        }
        // At most half full, so probes stay short.
        let capacity = (2 * n).max(1).next_power_of_two();
        let mut slots = vec![0u32; capacity];
        for i in 0..n as u32 {
            let mut s = index.home_slot(index.hash_at(i), capacity);
            while slots[s] != 0 {
                s = (s + 1) & (capacity - 1);
            }
            slots[s] = i + 1;
        }
        index.slots = slots.into();
        index
    }

    fn hash_at(&self, i: u32) -> u64 {
        if self.text {
            hash_text(self.text_bytes_at(i))
        } else {
            hash_int(self.ints[i as usize])
        }
    }

    /// The high bits of a multiplicative hash are its best mixed.
    #[inline]
    fn home_slot(&self, hash: u64, capacity: usize) -> usize {
        let bits = capacity.trailing_zeros();
        hash.checked_shr(64 - bits).unwrap_or(0) as usize
    }

    fn text_bytes_at(&self, i: u32) -> &[u8] {
        let i = i as usize;
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub fn kind(&self) -> IdKind {
        if self.text {
            IdKind::Text
        } else {
            IdKind::BigInt
        }
    }

    pub fn len(&self) -> usize {
        if self.text {
            self.offsets.len().saturating_sub(1)
        } else {
            self.ints.len()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Probes the table for the first index whose id `matches`.
    #[inline]
    fn probe(&self, hash: u64, matches: impl Fn(u32) -> bool) -> Option<u32> {
        let capacity = self.slots.len();
        if capacity == 0 {
            return None;
        }
        let mut s = self.home_slot(hash, capacity);
        // Bounded by the capacity, so even a damaged table cannot loop forever.
        for _ in 0..capacity {
            let slot = self.slots[s];
            if slot == 0 {
                return None;
            }
            if matches(slot - 1) {
                return Some(slot - 1);
            }
            s = (s + 1) & (capacity - 1);
        }
        None
    }

    #[inline]
    fn get_int(&self, v: i64) -> Option<u32> {
        if !self.dense.is_empty() {
            let offset = v.wrapping_sub(self.dense_first) as u64;
            return self.dense.get(usize::try_from(offset).ok()?).copied().filter(|&i| i != u32::MAX);
        }
        self.probe(hash_int(v), |i| self.ints.get(i as usize) == Some(&v))
    }

    fn get_text(&self, s: &str) -> Option<u32> {
        let s = s.as_bytes();
        self.probe(hash_text(s), |i| (i as usize) < self.len() && self.text_bytes_at(i) == s)
    }

    /// Index of `id`, converting across kinds the way SQL would (see [`IdMap::get`]).
    #[inline]
    pub fn get(&self, id: IdRef<'_>) -> Option<u32> {
        match (self.text, id) {
            (false, IdRef::Int(v)) => self.get_int(v),
            (false, IdRef::Text(s)) => s.trim().parse::<i64>().ok().and_then(|v| self.get_int(v)),
            (true, IdRef::Text(s)) => self.get_text(s),
            (true, IdRef::Int(v)) => self.get_text(&v.to_string()),
        }
    }

    /// The external id of a dense index, as bigint (None for a text id that is not a number).
    pub fn int_at(&self, index: u32) -> Option<i64> {
        if self.text {
            std::str::from_utf8(self.text_bytes_at(index)).ok()?.parse().ok()
        } else {
            Some(self.ints[index as usize])
        }
    }

    /// The external id of a dense index, as text.
    pub fn text_at(&self, index: u32) -> String {
        if self.text {
            String::from_utf8_lossy(self.text_bytes_at(index)).into_owned()
        } else {
            self.ints[index as usize].to_string()
        }
    }

    /// Bytes of the arrays, for cache accounting.
    pub fn memory_bytes(&self) -> usize {
        8 * (self.ints.len() + self.offsets.len()) + self.bytes.len() + 4 * (self.slots.len() + self.dense.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_in_first_seen_order() {
        let mut m = IdMap::new(IdKind::BigInt);
        assert_eq!(m.intern_int(1193), 0);
        assert_eq!(m.intern_int(661), 1);
        assert_eq!(m.intern_int(1193), 0);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(IdRef::Int(661)), Some(1));
        assert_eq!(m.get(IdRef::Int(7)), None);
        assert_eq!(m.get(IdRef::Text(" 661")), Some(1));
        assert_eq!(m.get(IdRef::Text("abc")), None);
        assert_eq!(m.int_at(0), Some(1193));
    }

    #[test]
    fn text_ids_roundtrip() {
        let mut m = IdMap::new(IdKind::Text);
        let a = m.intern_text("3f0e8a4c-uuid");
        let b = m.intern_text("42");
        assert_eq!(m.intern_text("3f0e8a4c-uuid"), a);
        assert_eq!(m.get(IdRef::Int(42)), Some(b));
        assert_eq!(m.text_at(a), "3f0e8a4c-uuid");
        assert_eq!(m.int_at(a), None);
        let rebuilt = IdMap::from_texts(vec!["3f0e8a4c-uuid".into(), "42".into()]);
        assert_eq!(rebuilt, m);
    }

    #[test]
    fn dense_lookup_agrees_with_the_map_and_declines_sparse_ids() {
        let m = IdMap::from_ints(vec![7, 3, 12, 4, 100]);
        let d = DenseLookup::build(&m).expect("small span");
        for probe in [i64::MIN, -1, 0, 2, 3, 4, 5, 7, 12, 99, 100, 101, i64::MAX] {
            assert_eq!(d.get(probe), m.get(IdRef::Int(probe)), "id {probe}");
        }
        assert!(DenseLookup::build(&IdMap::from_ints(vec![1, i64::MAX])).is_none());
        assert!(DenseLookup::build(&IdMap::from_ints(vec![i64::MIN, i64::MAX])).is_none());
        assert!(DenseLookup::build(&IdMap::from_texts(vec!["a".into()])).is_none());
        assert!(DenseLookup::build(&IdMap::new(IdKind::BigInt)).is_none());
    }

    #[test]
    fn id_index_agrees_with_the_map() {
        let maps = [
            IdMap::from_ints(vec![7, 3, 12, 4, 100]),
            IdMap::from_ints(vec![1, i64::MAX, i64::MIN, -5, 0]),
            IdMap::from_ints((0..1000).map(|i| i * 7919 % 1_000_003 - 500).collect()),
            IdMap::from_texts(vec!["a".into(), "42".into(), "".into(), "ü-ß".into(), "-7".into()]),
            IdMap::new(IdKind::BigInt),
            IdMap::new(IdKind::Text),
        ];
        for m in &maps {
            let ix = IdIndex::from_map(m);
            assert_eq!((ix.len(), ix.kind()), (m.len(), m.kind()));
            for i in 0..m.len() as u32 {
                assert_eq!(ix.text_at(i), m.text_at(i));
                assert_eq!(ix.int_at(i), m.int_at(i));
                assert_eq!(ix.get(IdRef::Text(&m.text_at(i))), Some(i));
                if let Some(v) = m.int_at(i) {
                    assert_eq!(ix.get(IdRef::Int(v)), m.get(IdRef::Int(v)));
                }
            }
            for probe in [i64::MIN, -500, -7, -1, 0, 2, 3, 42, 99, 101, 7419, i64::MAX] {
                assert_eq!(ix.get(IdRef::Int(probe)), m.get(IdRef::Int(probe)), "id {probe}");
            }
            for probe in ["", " 42", "abc", "ü-ß", "12", "x"] {
                assert_eq!(ix.get(IdRef::Text(probe)), m.get(IdRef::Text(probe)), "id {probe:?}");
            }
        }
        assert!(!IdIndex::from_map(&maps[0]).dense.is_empty(), "nearly dense ids use the direct table");
        assert!(IdIndex::from_map(&maps[1]).dense.is_empty());
    }
}
