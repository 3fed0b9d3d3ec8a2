//! The order book of one market: a dense array of price levels indexed by tick, with one
//! hierarchical bitmap per side to find the best and next levels.
//!
//! Invariants: the book is never crossed (best bid < best ask), so one level slot serves
//! whichever side rests at that price; a side's bitmap bit is set exactly when the level
//! is non-empty and rests on that side; `best_bid`/`best_ask` cache the extreme set bits.
//! Level memory is allocated when the market is added and never again.

pub mod bitmap;
pub mod level;

use crate::market::MarketConfig;
use crate::pool::{Pool, NIL};
use crate::types::{Price, Qty, Side};
use bitmap::Bitmap;
use level::Level;

/// The book of one market.
#[derive(Clone, Debug)]
pub struct Book {
    /// The market's configuration.
    pub cfg: MarketConfig,
    levels: Vec<Level>,
    bids: Bitmap,
    asks: Bitmap,
    best_bid: Option<usize>,
    best_ask: Option<usize>,
}

impl Book {
    /// An empty book spanning the configured price band.
    pub fn new(cfg: MarketConfig) -> Book {
        let n = cfg.levels();
        Book {
            cfg,
            levels: vec![Level::EMPTY; n],
            bids: Bitmap::new(n),
            asks: Bitmap::new(n),
            best_bid: None,
            best_ask: None,
        }
    }

    fn bitmap_mut(&mut self, side: Side) -> &mut Bitmap {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The best level index on `side`.
    pub fn best(&self, side: Side) -> Option<usize> {
        match side {
            Side::Buy => self.best_bid,
            Side::Sell => self.best_ask,
        }
    }

    /// The next non-empty level on `side` strictly worse than `idx`.
    pub fn next_worse(&self, side: Side, idx: usize) -> Option<usize> {
        match side {
            Side::Buy => idx
                .checked_sub(1)
                .and_then(|i| self.bids.prev_at_or_before(i)),
            Side::Sell => self.asks.next_at_or_after(idx + 1),
        }
    }

    /// The level at `idx`.
    pub fn level(&self, idx: usize) -> &Level {
        &self.levels[idx]
    }

    /// The level holding `price` (which must be admissible).
    pub fn level_at(&self, price: Price) -> &Level {
        &self.levels[self.cfg.level_of(price)]
    }

    /// The side resting at level `idx`, if any.
    pub fn side_at(&self, idx: usize) -> Option<Side> {
        if self.bids.get(idx) {
            Some(Side::Buy)
        } else if self.asks.get(idx) {
            Some(Side::Sell)
        } else {
            None
        }
    }

    /// Appends the order in `slot` (price, side, qty already set) to the tail of its level.
    /// The caller has checked the level total cannot overflow.
    pub fn push_back(&mut self, pool: &mut Pool, slot: u32) {
        let (side, price, qty) = (pool[slot].side, pool[slot].price, pool[slot].qty);
        let idx = self.cfg.level_of(price);
        let level = &mut self.levels[idx];
        pool[slot].prev = level.tail;
        pool[slot].next = NIL;
        if level.tail == NIL {
            level.head = slot;
        } else {
            pool[level.tail].next = slot;
        }
        level.tail = slot;
        level.qty += qty.0;
        level.count += 1;
        if level.count == 1 {
            self.bitmap_mut(side).set(idx);
            let best = match side {
                Side::Buy => &mut self.best_bid,
                Side::Sell => &mut self.best_ask,
            };
            let better = match (side, *best) {
                (_, None) => true,
                (Side::Buy, Some(b)) => idx > b,
                (Side::Sell, Some(b)) => idx < b,
            };
            if better {
                *best = Some(idx);
            }
        }
    }

    /// Unlinks the order in `slot` from its level (the slot itself stays allocated).
    pub fn unlink(&mut self, pool: &mut Pool, slot: u32) {
        let o = pool[slot];
        let idx = self.cfg.level_of(o.price);
        let level = &mut self.levels[idx];
        if o.prev == NIL {
            level.head = o.next;
        } else {
            pool[o.prev].next = o.next;
        }
        if o.next == NIL {
            level.tail = o.prev;
        } else {
            pool[o.next].prev = o.prev;
        }
        level.qty -= o.qty.0;
        level.count -= 1;
        if level.count == 0 {
            self.bitmap_mut(o.side).clear(idx);
            match o.side {
                Side::Buy if self.best_bid == Some(idx) => {
                    self.best_bid = idx
                        .checked_sub(1)
                        .and_then(|i| self.bids.prev_at_or_before(i));
                }
                Side::Sell if self.best_ask == Some(idx) => {
                    self.best_ask = self.asks.next_at_or_after(idx + 1);
                }
                _ => {}
            }
        }
    }

    /// Reduces a resting order by `by` lots in place (keeps its queue position).
    pub fn reduce(&mut self, pool: &mut Pool, slot: u32, by: Qty) {
        let idx = self.cfg.level_of(pool[slot].price);
        pool[slot].qty.0 -= by.0;
        self.levels[idx].qty -= by.0;
    }

    /// Visits up to `n` levels of `side` from the best: `(price, qty, orders)`.
    pub fn depth(&self, side: Side, n: usize, mut f: impl FnMut(Price, Qty, u32)) {
        let mut cur = self.best(side);
        for _ in 0..n {
            let Some(idx) = cur else { return };
            let l = &self.levels[idx];
            f(self.cfg.price_of(idx), Qty(l.qty), l.count);
            cur = self.next_worse(side, idx);
        }
    }

    /// Checks every invariant of the module against the pool; returns a description of
    /// the first violation.
    pub fn verify(&self, pool: &Pool) -> Result<(), String> {
        let mut top = [None, None];
        for (idx, level) in self.levels.iter().enumerate() {
            let side = self.side_at(idx);
            if self.bids.get(idx) && self.asks.get(idx) {
                return Err(format!("level {idx} marked on both sides"));
            }
            if (level.count == 0) != side.is_none() {
                return Err(format!(
                    "level {idx}: count {} vs bitmap {side:?}",
                    level.count
                ));
            }
            let (mut qty, mut count, mut prev, mut slot) = (0i64, 0u32, NIL, level.head);
            while slot != NIL {
                let o = &pool[slot];
                if o.prev != prev || Some(o.side) != side || self.cfg.level_of(o.price) != idx {
                    return Err(format!("level {idx}: order slot {slot} mislinked"));
                }
                if o.qty.0 <= 0 {
                    return Err(format!("order {:?} rests with qty {}", o.id, o.qty.0));
                }
                qty += o.qty.0;
                count += 1;
                prev = slot;
                slot = o.next;
            }
            if prev != level.tail || qty != level.qty || count != level.count {
                return Err(format!(
                    "level {idx}: aggregate {level:?} vs walk {qty}/{count}"
                ));
            }
            if let Some(s) = side {
                let t = &mut top[s as usize];
                if s == Side::Sell && t.is_none() {
                    *t = Some(idx);
                }
                if s == Side::Buy {
                    *t = Some(idx);
                }
            }
        }
        if top[0] != self.best_bid || top[1] != self.best_ask {
            return Err(format!(
                "best cache {:?}/{:?} vs {top:?}",
                self.best_bid, self.best_ask
            ));
        }
        if let (Some(b), Some(a)) = (self.best_bid, self.best_ask) {
            if b >= a {
                return Err(format!("crossed book: bid level {b} >= ask level {a}"));
            }
        }
        Ok(())
    }
}
