//! Id maps to pool slots: a fixed-capacity open-addressing hash table for client ids,
//! and a direct-mapped index for the engine's sequential order ids.
//!
//! Both store only slot numbers: a key is read back from the order in that slot (the
//! caller passes `key_of`), so the tables are 4 bytes an entry and a miss touches one
//! small array. Chosen over the standard library's hash map because they never allocate
//! after construction, hash with a function of the key and a configured seed (no
//! random state), and are never iterated, so they cannot leak ordering into the event
//! log.
//!
//! The seed (`EngineConfig::hash_seed`) is part of the configuration, so runs stay
//! deterministic; it exists because client ids are chosen by clients. Unseeded, the
//! hash is a public bijection, and a client could compute ids that all land in one
//! probe run and make every lookup of every account linear. Keyed by a seed the client
//! does not know, bucket placement is unpredictable. This is collision resistance, not
//! cryptography: the seed must be secret and differ per deployment, and it changes
//! only bucket placement, never which slot a key maps to, so it never changes the
//! event log.
//!
//! Invariants of [`FixedMap`]: the table length is a power of two and at least twice
//! the capacity, so probes stay short and there is always an empty entry; an entry is
//! empty exactly when it is [`EMPTY`]; deletion shifts later entries back (no
//! tombstones).

/// Marks an empty entry.
const EMPTY: u32 = u32::MAX;

/// A key that hashes itself deterministically under a seed.
pub trait MapKey: Copy + Eq {
    /// A well-mixed 64-bit hash keyed by `seed`.
    fn hash64(&self, seed: u64) -> u64;
}

impl MapKey for u64 {
    fn hash64(&self, seed: u64) -> u64 {
        keyed(*self, seed)
    }
}

impl MapKey for (u32, u64) {
    fn hash64(&self, seed: u64) -> u64 {
        keyed(self.1 ^ keyed(u64::from(self.0), seed), seed)
    }
}

/// SplitMix64's finaliser keyed by `seed`: the seed is xored in first and added (in two
/// rotations) between the rounds, so the bucket of a key cannot be computed, nor two
/// colliding keys found offline, without it. Still a bijection of `x` for each seed.
fn keyed(x: u64, seed: u64) -> u64 {
    let mut z = x ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = z.wrapping_add(seed.rotate_left(23));
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z = z.wrapping_add(seed.rotate_left(47));
    z = (z ^ (z >> 31)).wrapping_mul(0xd6e8_feb8_6659_fd93);
    z ^ (z >> 32)
}

/// Fixed-capacity hash table of slots, keyed by `K` read through `key_of(slot)`.
#[derive(Clone, Debug)]
pub struct FixedMap<K: MapKey> {
    slots: Vec<u32>,
    mask: usize,
    /// Hash key (see the module docs).
    seed: u64,
    len: usize,
    capacity: usize,
    key: std::marker::PhantomData<K>,
}

impl<K: MapKey> FixedMap<K> {
    /// A map that holds up to `capacity` entries without allocating again, hashing
    /// under `seed`.
    pub fn with_capacity(capacity: usize, seed: u64) -> Self {
        let size = (capacity.max(1) * 2).next_power_of_two();
        FixedMap {
            slots: vec![EMPTY; size],
            mask: size - 1,
            seed,
            len: 0,
            capacity,
            key: std::marker::PhantomData,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn home(&self, key: K) -> usize {
        key.hash64(self.seed) as usize & self.mask
    }

    fn find(&self, key: K, key_of: &impl Fn(u32) -> K) -> Result<usize, usize> {
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                EMPTY => return Err(i),
                slot if key_of(slot) == key => return Ok(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// The slot stored under `key`.
    pub fn get(&self, key: K, key_of: impl Fn(u32) -> K) -> Option<u32> {
        self.find(key, &key_of).ok().map(|i| self.slots[i])
    }

    /// Stores `slot` (whose key `key_of(slot)` is `key`). Returns false (and changes
    /// nothing) if the key is present or the map is at capacity.
    pub fn insert(&mut self, key: K, slot: u32, key_of: impl Fn(u32) -> K) -> bool {
        debug_assert_ne!(slot, EMPTY);
        match self.find(key, &key_of) {
            Ok(_) => false,
            Err(_) if self.len == self.capacity => false,
            Err(i) => {
                self.slots[i] = slot;
                self.len += 1;
                true
            }
        }
    }

    /// Removes `key`, returning its slot. `key_of` must still answer for every stored
    /// slot, this one included.
    pub fn remove(&mut self, key: K, key_of: impl Fn(u32) -> K) -> Option<u32> {
        let mut hole = self.find(key, &key_of).ok()?;
        let removed = self.slots[hole];
        self.slots[hole] = EMPTY;
        self.len -= 1;
        // Backward-shift: move later entries of the probe run into the hole when their
        // home does not lie strictly between the hole and their position.
        let mut i = hole;
        loop {
            i = (i + 1) & self.mask;
            let slot = self.slots[i];
            if slot == EMPTY {
                return Some(removed);
            }
            let dist_home = i.wrapping_sub(self.home(key_of(slot))) & self.mask;
            let dist_hole = i.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.slots[hole] = slot;
                self.slots[i] = EMPTY;
                hole = i;
            }
        }
    }
}

/// Engine order id → pool slot. The engine assigns ids sequentially, so `id mod size` is
/// a perfect hash for the `size` most recent ids: a direct-mapped table answers those
/// with one read and no probing, and the live orders (mostly recent) sit close together
/// in it. An order still resting when a new id lands on its entry moves to an overflow
/// [`FixedMap`]. A hit is confirmed against the order's own id in the pool, which the
/// caller reads next anyway.
#[derive(Clone, Debug)]
pub struct OrderIndex {
    direct: Vec<u32>,
    mask: u64,
    overflow: FixedMap<u64>,
    len: usize,
}

impl OrderIndex {
    /// An index for up to `capacity` live orders, allocated here once; the overflow map
    /// hashes under `seed`.
    pub fn with_capacity(capacity: usize, seed: u64) -> Self {
        let size = (capacity.max(1) * 2).next_power_of_two();
        OrderIndex {
            direct: vec![EMPTY; size],
            mask: size as u64 - 1,
            overflow: FixedMap::with_capacity(capacity, seed),
            len: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `id` at `slot`; `id_of(s)` gives the id of the order in slot `s`, to move a
    /// displaced entry to the overflow map. The caller keeps at most `capacity` entries.
    pub fn insert(&mut self, id: u64, slot: u32, id_of: impl Fn(u32) -> u64) {
        let entry = &mut self.direct[(id & self.mask) as usize];
        if *entry != EMPTY {
            let displaced = *entry;
            // Never full: it holds live orders other than this one, at most capacity − 1.
            let moved = self.overflow.insert(id_of(displaced), displaced, &id_of);
            debug_assert!(moved, "overflow map full or id present twice");
        }
        *entry = slot;
        self.len += 1;
    }

    /// The slot of `id`; `id_of(s)` gives the id of the order in slot `s`.
    pub fn get(&self, id: u64, id_of: impl Fn(u32) -> u64) -> Option<u32> {
        let slot = self.direct[(id & self.mask) as usize];
        if slot != EMPTY && id_of(slot) == id {
            Some(slot)
        } else if self.overflow.is_empty() {
            None
        } else {
            self.overflow.get(id, id_of)
        }
    }

    /// Removes `id`, which is present at `slot`; `id_of` as for [`OrderIndex::get`].
    pub fn remove(&mut self, id: u64, slot: u32, id_of: impl Fn(u32) -> u64) {
        let entry = &mut self.direct[(id & self.mask) as usize];
        if *entry == slot {
            *entry = EMPTY;
        } else {
            self.overflow.remove(id, id_of);
        }
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::{FixedMap, OrderIndex};
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_a_btreemap_under_churn() {
        let mut m = FixedMap::<u64>::with_capacity(500, 0x5eed);
        let mut truth = BTreeMap::new();
        let mut x: u64 = 12345;
        // The "pool": slot 3k holds key k.
        let key_of = |slot: u32| u64::from(slot / 3);
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let k = (x >> 33) % 1500;
            if x & 1 == 0 {
                let inserted = m.insert(k, (k * 3) as u32, key_of);
                let expect = !truth.contains_key(&k) && truth.len() < 500;
                assert_eq!(inserted, expect);
                if expect {
                    truth.insert(k, (k * 3) as u32);
                }
            } else {
                assert_eq!(m.remove(k, key_of), truth.remove(&k));
            }
            assert_eq!(m.len(), truth.len());
            let probe = (x >> 13) % 1500;
            assert_eq!(m.get(probe, key_of), truth.get(&probe).copied());
        }
    }

    #[test]
    fn order_index_behaves_like_a_btreemap_with_long_lived_orders() {
        // Capacity 64 → 128 direct entries: ids 128 apart collide, and every tenth order
        // lives for thousands of ids, so the overflow map is exercised constantly.
        let mut index = OrderIndex::with_capacity(64, 0x5eed);
        let mut slots: Vec<u64> = vec![u64::MAX; 64]; // slot -> id ("the pool")
        let mut truth = BTreeMap::new(); // id -> slot
        let mut x: u64 = 99;
        for id in 0..50_000u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            if truth.len() == 64 || (truth.len() > 40 && x % 4 == 0) {
                // Remove a short-lived order (or, rarely, the oldest one).
                let victim = if x & 0x300 == 0 {
                    *truth.keys().next().expect("non-empty")
                } else {
                    *truth
                        .keys()
                        .rev()
                        .nth((x >> 40) as usize % 8)
                        .expect("non-empty")
                };
                let slot = truth.remove(&victim).expect("present");
                index.remove(victim, slot, |s| slots[s as usize]);
                slots[slot as usize] = u64::MAX;
            }
            let slot = slots
                .iter()
                .position(|&i| i == u64::MAX)
                .expect("free slot") as u32;
            slots[slot as usize] = id;
            index.insert(id, slot, |s| slots[s as usize]);
            truth.insert(id, slot);
            assert_eq!(index.len(), truth.len());
            let probe = (x >> 17) % (id + 1);
            assert_eq!(
                index.get(probe, |s| slots[s as usize]),
                truth.get(&probe).copied()
            );
        }
        for (&id, &slot) in &truth {
            assert_eq!(index.get(id, |s| slots[s as usize]), Some(slot));
        }
    }

    #[test]
    fn different_seeds_place_the_same_keys_in_different_buckets() {
        // 1,000 keys of one account with consecutive client ids (what a client controls),
        // in a table of 2,048 buckets: under two seeds nearly every key moves.
        let (a, b) = (
            FixedMap::<(u32, u64)>::with_capacity(1024, 0x0123_4567_89ab_cdef),
            FixedMap::<(u32, u64)>::with_capacity(1024, 0xfedc_ba98_7654_3211),
        );
        let moved = (0..1000u64)
            .filter(|&c| a.home((7, c)) != b.home((7, c)))
            .count();
        assert!(moved > 950, "only {moved} of 1000 keys changed bucket");
        // And one seed spreads consecutive ids: no bucket holds more than a few.
        let mut load = vec![0u32; 2048];
        for c in 0..1000u64 {
            load[a.home((7, c))] += 1;
        }
        assert!(
            load.iter().all(|&n| n <= 8),
            "max load {:?}",
            load.iter().max()
        );
    }
}
