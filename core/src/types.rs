//! Plain identifiers and the integer newtypes for price and quantity.
//!
//! Invariants: every value here is a plain integer; there is no float entry point.
//! `Price` counts the smallest price unit of a market (quote atoms per lot); a market's
//! tick is a whole number of those units. `Qty` counts lots. Arithmetic on them is
//! checked by the callers that can overflow (sums of quantities at a level).

/// A price in the market's smallest price unit (quote atoms per lot); must sit on the market's tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub i64);

/// A quantity in whole lots of the market's base asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(pub i64);

/// Engine-assigned order id: strictly increasing in acceptance order, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OrderId(pub u64);

/// Client-chosen order id, unique among an account's live resting orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ClientOrderId(pub u64);

/// Account id: a dense index below the engine's configured account capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AccountId(pub u32);

impl AccountId {
    /// The insurance fund where an event names an account: the taker of its unwind
    /// fills, the bankrupt side of its own deleveraging, the payer or receiver of its
    /// funding. Never an account of the engine (`max_accounts` is below it).
    pub const FUND: AccountId = AccountId(u32::MAX);
}

/// Market id: a dense index, assigned in `AddMarket` order starting at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MarketId(pub u32);

/// The side of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// Bid: wants to buy, rests below the best ask.
    Buy,
    /// Ask: wants to sell, rests above the best bid.
    Sell,
}

impl Side {
    /// The other side.
    #[must_use]
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// True if an order on this side with limit `limit` would trade against a resting price `resting`.
    #[must_use]
    pub fn crosses(self, limit: Price, resting: Price) -> bool {
        match self {
            Side::Buy => limit >= resting,
            Side::Sell => limit <= resting,
        }
    }
}
