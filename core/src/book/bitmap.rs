//! A hierarchical bitmap over dense level indices: O(log64 n) set, clear, and
//! next/previous set bit. It finds the next non-empty price level without walking
//! empty ones, however far apart prices are.
//!
//! Invariants: `layers[0]` holds one bit per index; for every `k`, bit `j` of
//! `layers[k + 1]` is set exactly when word `j` of `layers[k]` is non-zero; the last
//! layer is a single word.

/// Hierarchical bitmap with a fixed number of indices.
#[derive(Clone, Debug)]
pub struct Bitmap {
    layers: Vec<Vec<u64>>,
}

impl Bitmap {
    /// A bitmap of `len` clear bits (allocated once, here).
    pub fn new(len: usize) -> Bitmap {
        let mut layers = Vec::new();
        let mut words = len.div_ceil(64).max(1);
        loop {
            layers.push(vec![0u64; words]);
            if words == 1 {
                break;
            }
            words = words.div_ceil(64);
        }
        Bitmap { layers }
    }

    /// True if bit `i` is set.
    pub fn get(&self, i: usize) -> bool {
        self.layers[0][i / 64] & (1 << (i % 64)) != 0
    }

    /// Sets bit `i`.
    pub fn set(&mut self, mut i: usize) {
        for layer in &mut self.layers {
            let word = &mut layer[i / 64];
            let was_empty = *word == 0;
            *word |= 1 << (i % 64);
            if !was_empty {
                return;
            }
            i /= 64;
        }
    }

    /// Clears bit `i`.
    pub fn clear(&mut self, mut i: usize) {
        for layer in &mut self.layers {
            let word = &mut layer[i / 64];
            *word &= !(1 << (i % 64));
            if *word != 0 {
                return;
            }
            i /= 64;
        }
    }

    /// The smallest set index `>= from`.
    pub fn next_at_or_after(&self, from: usize) -> Option<usize> {
        let mut pos = from;
        for layer in 0..self.layers.len() {
            let words = &self.layers[layer];
            let w = pos / 64;
            let word = *words.get(w)?;
            let masked = word & (u64::MAX << (pos % 64));
            if masked != 0 {
                let mut p = w * 64 + masked.trailing_zeros() as usize;
                for below in self.layers[..layer].iter().rev() {
                    p = p * 64 + below[p].trailing_zeros() as usize;
                }
                return Some(p);
            }
            pos = w + 1;
        }
        None
    }

    /// The largest set index `<= from`.
    pub fn prev_at_or_before(&self, from: usize) -> Option<usize> {
        let mut pos = from;
        for layer in 0..self.layers.len() {
            let words = &self.layers[layer];
            let w = (pos / 64).min(words.len() - 1);
            let shift = if pos / 64 > w { 0 } else { 63 - pos % 64 };
            let masked = words[w] & (u64::MAX >> shift);
            if masked != 0 {
                let mut p = w * 64 + 63 - masked.leading_zeros() as usize;
                for below in self.layers[..layer].iter().rev() {
                    p = p * 64 + 63 - below[p].leading_zeros() as usize;
                }
                return Some(p);
            }
            if w == 0 {
                return None;
            }
            pos = w - 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Bitmap;

    #[test]
    fn next_and_prev_agree_with_a_linear_scan() {
        let len = 300_000;
        let mut bm = Bitmap::new(len);
        let mut truth = vec![false; len];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % len as u64) as usize;
            if step % 3 == 0 {
                bm.clear(i);
                truth[i] = false;
            } else {
                bm.set(i);
                truth[i] = true;
            }
            let q = ((x >> 20) % len as u64) as usize;
            assert_eq!(bm.next_at_or_after(q), (q..len).find(|&j| truth[j]));
            assert_eq!(bm.prev_at_or_before(q), (0..=q).rev().find(|&j| truth[j]));
            assert_eq!(bm.get(q), truth[q]);
        }
    }

    #[test]
    fn empty_and_edge_queries() {
        let mut bm = Bitmap::new(1);
        assert_eq!(bm.next_at_or_after(0), None);
        assert_eq!(bm.prev_at_or_before(0), None);
        bm.set(0);
        assert_eq!(bm.next_at_or_after(0), Some(0));
        assert_eq!(bm.prev_at_or_before(0), Some(0));
        assert_eq!(bm.next_at_or_after(1), None);
    }
}
