//! A bounded FIFO ring of `Copy` items, allocated once.
//!
//! The engine pushes the liquidation orders of a round onto it and feeds them to the
//! book in FIFO order; a full ring is drained one item before the next push
//! (back-pressure, never a drop). It is single-threaded: the engine thread owns both
//! ends, so no synchronisation (and no `loom` model) is involved.
//!
//! Invariants: `len <= buf.len()`; the items are `buf[(head + i) % cap]`, `i < len`.

/// A bounded FIFO ring.
#[derive(Clone, Debug)]
pub struct Ring<T: Copy> {
    buf: Vec<T>,
    head: usize,
    len: usize,
}

impl<T: Copy + Default> Ring<T> {
    /// A ring holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Ring<T> {
        Ring {
            buf: vec![T::default(); capacity.max(1)],
            head: 0,
            len: 0,
        }
    }

    /// Appends `item`; gives it back if the ring is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.len == self.buf.len() {
            return Err(item);
        }
        let at = (self.head + self.len) % self.buf.len();
        self.buf[at] = item;
        self.len += 1;
        Ok(())
    }

    /// Removes the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let item = self.buf[self.head];
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        Some(item)
    }

    /// Number of items held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no item is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn fifo_order_and_back_pressure() {
        let mut r = Ring::<u32>::new(2);
        assert_eq!(r.push(1), Ok(()));
        assert_eq!(r.push(2), Ok(()));
        assert_eq!(r.push(3), Err(3));
        assert_eq!(r.pop(), Some(1));
        assert_eq!(r.push(3), Ok(()));
        assert_eq!((r.pop(), r.pop(), r.pop()), (Some(2), Some(3), None));
        assert!(r.is_empty());
    }
}
