//! One price level: a FIFO queue of resting orders threaded through the pool.
//!
//! Invariants: `count == 0` exactly when `head == tail == NIL`; `qty` is the sum of the
//! queued orders' remaining quantities; `head` is the oldest order (first to fill).

use crate::pool::NIL;

/// Aggregate and queue ends of one price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    /// Oldest order slot, or NIL.
    pub head: u32,
    /// Newest order slot, or NIL.
    pub tail: u32,
    /// Total remaining quantity in lots.
    pub qty: i64,
    /// Number of orders.
    pub count: u32,
}

impl Level {
    /// An empty level.
    pub const EMPTY: Level = Level {
        head: NIL,
        tail: NIL,
        qty: 0,
        count: 0,
    };
}
