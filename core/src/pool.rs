//! The order pool: every resting order lives in one preallocated slot.
//!
//! Invariants: a slot is either on the free stack or holds a live resting order, never
//! both; slots are only created in [`Pool::with_capacity`], so the pool never allocates
//! after start-up. Links (`prev`/`next` within a price level, `acct_prev`/`acct_next`
//! within an account) are slot indices or [`NIL`].

use crate::command::StpMode;
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty, Side};

/// "No slot".
pub const NIL: u32 = u32::MAX;

/// A resting order.
#[derive(Clone, Copy, Debug)]
pub struct Order {
    /// Engine id.
    pub id: OrderId,
    /// Client id.
    pub client_id: ClientOrderId,
    /// Owner.
    pub account: AccountId,
    /// Market.
    pub market: MarketId,
    /// Side.
    pub side: Side,
    /// Self-trade prevention mode, used again if a replace makes it aggressive.
    pub stp: StpMode,
    /// Whether a replace may make it take liquidity (false for post-only).
    pub post_only: bool,
    /// Reduce-only: trimmed at the end of a command to what the position still needs.
    pub reduce_only: bool,
    /// Limit price.
    pub price: Price,
    /// Remaining open quantity, always positive while resting.
    pub qty: Qty,
    /// Previous order in the price level (older), or NIL.
    pub prev: u32,
    /// Next order in the price level (newer), or NIL.
    pub next: u32,
    /// Previous order of the same account, or NIL.
    pub acct_prev: u32,
    /// Next order of the same account, or NIL.
    pub acct_next: u32,
}

impl Default for Order {
    fn default() -> Self {
        Order {
            id: OrderId(0),
            client_id: ClientOrderId(0),
            account: AccountId(0),
            market: MarketId(0),
            side: Side::Buy,
            stp: StpMode::CancelAggressor,
            post_only: false,
            reduce_only: false,
            price: Price(0),
            qty: Qty(0),
            prev: NIL,
            next: NIL,
            acct_prev: NIL,
            acct_next: NIL,
        }
    }
}

/// Fixed-capacity slab of orders with a free stack.
#[derive(Clone, Debug)]
pub struct Pool {
    orders: Vec<Order>,
    free: Vec<u32>,
}

impl Pool {
    /// A pool of `capacity` free slots (all memory allocated here).
    pub fn with_capacity(capacity: u32) -> Pool {
        Pool {
            orders: vec![Order::default(); capacity as usize],
            free: (0..capacity).rev().collect(),
        }
    }

    /// Number of live orders.
    pub fn live(&self) -> usize {
        self.orders.len() - self.free.len()
    }

    /// True if no slot is free.
    pub fn is_full(&self) -> bool {
        self.free.is_empty()
    }

    /// Takes a free slot and stores `order` in it.
    pub fn alloc(&mut self, order: Order) -> Option<u32> {
        let slot = self.free.pop()?;
        self.orders[slot as usize] = order;
        Some(slot)
    }

    /// The engine order id in a slot, as the id index reads it.
    pub fn order_id(&self) -> impl Fn(u32) -> u64 + '_ {
        |slot| self.orders[slot as usize].id.0
    }

    /// The (account, client id) key in a slot, as the client-id map reads it.
    pub fn client_key(&self) -> impl Fn(u32) -> (u32, u64) + '_ {
        |slot| {
            let o = &self.orders[slot as usize];
            (o.account.0, o.client_id.0)
        }
    }

    /// Returns a slot to the free stack.
    pub fn release(&mut self, slot: u32) {
        debug_assert!(self.free.len() < self.orders.len());
        self.free.push(slot);
    }
}

impl std::ops::Index<u32> for Pool {
    type Output = Order;
    fn index(&self, slot: u32) -> &Order {
        &self.orders[slot as usize]
    }
}

impl std::ops::IndexMut<u32> for Pool {
    fn index_mut(&mut self, slot: u32) -> &mut Order {
        &mut self.orders[slot as usize]
    }
}
