//! Market configuration and its validation.
//!
//! Invariants of a validated config: `tick > 0`; `0 < min_price <= max_price`, both on tick;
//! the band holds at most [`MAX_LEVELS`] ticks; `0 < max_qty`; `max_price * max_qty` fits in
//! an `i64`, so every notional of one order is representable without overflow.

use crate::risk::{RiskConfig, RiskConfigError};
use crate::types::{Price, Qty, Side};

/// Most price levels one market may span (dense level array of this many slots).
pub const MAX_LEVELS: i64 = 1 << 24;

/// Most basis points a market-order protection band may span.
pub const MAX_BAND_BPS: u32 = 10_000;

/// Static parameters of one market, fixed at `AddMarket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketConfig {
    /// Price units between two admissible prices.
    pub tick: i64,
    /// Base-asset atoms in one lot (descriptive: quantities are counted in lots).
    pub lot_base_atoms: i64,
    /// Lowest admissible order price.
    pub min_price: Price,
    /// Highest admissible order price.
    pub max_price: Price,
    /// Largest quantity a single order may carry.
    pub max_qty: Qty,
    /// Market-order protection band, in basis points of the best opposite price at arrival.
    pub market_band_bps: u32,
    /// Leverage, margin and fee parameters; `None` for a plain matching market (no
    /// positions, no margin, no fees), as used for equity replay.
    pub risk: Option<RiskConfig>,
}

/// Why a market configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarketConfigError {
    /// Tick or lot size is not positive.
    NonPositiveTickOrLot,
    /// The price band is empty, not positive or not on tick.
    BadPriceBand,
    /// The price band spans more than [`MAX_LEVELS`] ticks.
    TooManyLevels,
    /// `max_qty` is not positive, or `max_price * max_qty` overflows.
    BadMaxQty,
    /// The market-order band exceeds [`MAX_BAND_BPS`].
    BadMarketBand,
    /// The risk parameters are invalid.
    Risk(RiskConfigError),
}

impl MarketConfig {
    /// Checks every bound listed in the module invariants.
    pub fn validate(&self) -> Result<(), MarketConfigError> {
        if self.tick <= 0 || self.lot_base_atoms <= 0 {
            return Err(MarketConfigError::NonPositiveTickOrLot);
        }
        let (lo, hi) = (self.min_price.0, self.max_price.0);
        if lo <= 0 || hi < lo || lo % self.tick != 0 || hi % self.tick != 0 {
            return Err(MarketConfigError::BadPriceBand);
        }
        if (hi - lo) / self.tick >= MAX_LEVELS {
            return Err(MarketConfigError::TooManyLevels);
        }
        if self.max_qty.0 <= 0 || hi.checked_mul(self.max_qty.0).is_none() {
            return Err(MarketConfigError::BadMaxQty);
        }
        if self.market_band_bps > MAX_BAND_BPS {
            return Err(MarketConfigError::BadMarketBand);
        }
        if let Some(r) = &self.risk {
            r.validate(hi).map_err(MarketConfigError::Risk)?;
        }
        Ok(())
    }

    /// Number of price levels in the band.
    pub fn levels(&self) -> usize {
        ((self.max_price.0 - self.min_price.0) / self.tick + 1) as usize
    }

    /// Dense level index of an admissible price.
    pub fn level_of(&self, price: Price) -> usize {
        ((price.0 - self.min_price.0) / self.tick) as usize
    }

    /// Price of a dense level index.
    pub fn price_of(&self, level: usize) -> Price {
        Price(self.min_price.0 + level as i64 * self.tick)
    }

    /// True if `price` is on tick and inside the band.
    pub fn admits_price(&self, price: Price) -> bool {
        price >= self.min_price && price <= self.max_price && price.0 % self.tick == 0
    }

    /// The protection limit of a market order on `side` facing best opposite price `best`:
    /// `best ± best * band_bps / 10_000`, rounded to a tick toward `best` (less aggressive),
    /// then clamped to the band.
    pub fn market_limit(&self, side: Side, best: Price) -> Price {
        let offset = i128::from(best.0) * i128::from(self.market_band_bps) / 10_000;
        let offset = (offset as i64 / self.tick) * self.tick; // floor: rounds toward best
        let raw = match side {
            Side::Buy => best.0.saturating_add(offset),
            Side::Sell => best.0.saturating_sub(offset),
        };
        Price(raw.clamp(self.min_price.0, self.max_price.0))
    }
}
