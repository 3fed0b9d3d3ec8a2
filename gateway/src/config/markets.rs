//! Market entries of the configuration: the wire's decimal conventions (how many
//! decimals a FIX price or quantity carries) beside every core risk parameter.
//! Rates are given in basis points and converted with `risk::bps` (toward zero).
//!
//! Invariant: a checked [`MarketSpec`] converts to a `MarketConfig` that passes the
//! core's own `validate`, and its decimals fit an `i64` scale.

use cascade_core::risk::{bps, MAX_TIERS};
use cascade_core::{AdlMode, LiquidationConfig, MarketConfig, Price, Qty, Rate, RiskConfig, Tier};
use serde::{Deserialize, Serialize};

use super::{bad, ConfigError};

/// One market.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    /// FIX Symbol (55) and market-data name.
    pub symbol: String,
    /// Decimals of a wire price: wire `60000.5` with 1 decimal is core price 600005.
    pub price_decimals: u32,
    /// Decimals of a wire quantity: wire `0.001` with 3 decimals is 1 lot.
    pub qty_decimals: u32,
    /// Core price units between admissible prices.
    pub tick: i64,
    /// Lowest admissible price, core units.
    pub min_price: i64,
    /// Highest admissible price, core units.
    pub max_price: i64,
    /// Largest order quantity, lots.
    pub max_qty: i64,
    /// Base-asset atoms per lot (descriptive).
    pub lot_base_atoms: i64,
    /// Market-order protection band, bps of the best opposite price.
    pub market_band_bps: u32,
    /// Mark price set when the market is first opened, core units (0: none).
    pub initial_mark: i64,
    /// Atoms put into the insurance fund when the market is first opened.
    pub insurance_deposit: i64,
    /// Leverage, margin and fees; absent for a plain spot-like book.
    pub risk: Option<RiskSpec>,
}

/// Risk parameters, as `RiskConfig`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSpec {
    /// Highest leverage an account may choose.
    pub max_leverage: u32,
    /// Maintenance tiers by position notional, ascending.
    pub tiers: Vec<TierSpec>,
    /// Maker fee, bps (negative: rebate).
    pub maker_fee_bps: i64,
    /// Taker fee, bps.
    pub taker_fee_bps: i64,
    /// EWMA weight of the volatility estimate, bps.
    pub vol_lambda_bps: i64,
    /// Volatility margin multiplier, bps.
    pub vol_k_bps: i64,
    /// Floor of the volatility margin scale, bps (10000 = 1).
    pub vol_floor_bps: i64,
    /// Cap of the volatility margin scale, bps.
    pub vol_cap_bps: i64,
    /// Open-interest cap, lots.
    pub oi_cap: i64,
    /// One account's share of the open-interest cap, bps.
    pub account_oi_share_bps: u32,
    /// Largest move of one mark update, bps.
    pub max_mark_move_bps: u32,
    /// Liquidation parameters; absent: no liquidation.
    pub liquidation: Option<LiquidationSpec>,
}

/// One maintenance tier.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// Largest position notional in this tier, quote atoms.
    pub max_notional: i64,
    /// Maintenance margin rate, bps.
    pub mm_bps: i64,
}

/// Liquidation parameters, as `LiquidationConfig`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidationSpec {
    /// Target above maintenance after a partial liquidation, bps.
    pub buffer_bps: i64,
    /// Positions below this notional are closed whole, atoms.
    pub min_notional: i64,
    /// Band of the first liquidation order, bps.
    pub band_bps: u32,
    /// Base liquidation fee, bps.
    pub fee_bps: i64,
    /// `queue` or `pro-rata`.
    pub adl: String,
    /// Cancel resting orders of pools below initial margin after every command.
    pub order_margin: bool,
    /// Haircut on the fund's position when judging its capacity, bps.
    pub fund_haircut_bps: i64,
    /// Share of visible depth the fund's unwind takes per command, bps.
    pub unwind_rate_bps: i64,
    /// The market has its own insurance fund.
    pub isolated_fund: bool,
}

impl MarketSpec {
    /// Checks the spec and that the core accepts the market it makes.
    pub(super) fn check(&self, key: &str) -> Result<(), ConfigError> {
        let k = |f: &str| format!("{key}.{f}");
        let sym_ok = !self.symbol.is_empty()
            && self.symbol.len() <= 16
            && self
                .symbol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if !sym_ok {
            return Err(bad(k("symbol"), "1 to 16 of A-Z a-z 0-9 - _ . /"));
        }
        if self.price_decimals > 9 {
            return Err(bad(k("price_decimals"), "at most 9"));
        }
        if self.qty_decimals > 9 {
            return Err(bad(k("qty_decimals"), "at most 9"));
        }
        if self.insurance_deposit < 0 {
            return Err(bad(k("insurance_deposit"), "negative"));
        }
        let cfg = self.market_config(key)?;
        if self.initial_mark != 0 && !cfg.admits_price(Price(self.initial_mark)) {
            return Err(bad(k("initial_mark"), "outside the price band or off tick"));
        }
        cfg.validate()
            .map_err(|e| bad(key, format!("the core refuses the market: {e:?}")))
    }

    /// The core's market configuration.
    pub fn market_config(&self, key: &str) -> Result<MarketConfig, ConfigError> {
        let risk = match &self.risk {
            Some(r) => Some(r.risk_config(&format!("{key}.risk"))?),
            None => None,
        };
        Ok(MarketConfig {
            tick: self.tick,
            lot_base_atoms: self.lot_base_atoms,
            min_price: Price(self.min_price),
            max_price: Price(self.max_price),
            max_qty: Qty(self.max_qty),
            market_band_bps: self.market_band_bps,
            risk,
        })
    }
}

impl RiskSpec {
    fn risk_config(&self, key: &str) -> Result<RiskConfig, ConfigError> {
        if self.tiers.is_empty() || self.tiers.len() > MAX_TIERS {
            return Err(bad(
                format!("{key}.tiers"),
                format!("1 to {MAX_TIERS} tiers"),
            ));
        }
        let mut tiers = [Tier {
            max_notional: 0,
            mm_rate: Rate::ZERO,
        }; MAX_TIERS];
        for (t, s) in tiers.iter_mut().zip(&self.tiers) {
            *t = Tier {
                max_notional: s.max_notional,
                mm_rate: rate(&format!("{key}.tiers.mm_bps"), s.mm_bps)?,
            };
        }
        let r = |f: &str, v: i64| rate(&format!("{key}.{f}"), v);
        Ok(RiskConfig {
            max_leverage: self.max_leverage,
            tiers,
            tier_count: self.tiers.len() as u8,
            maker_fee: r("maker_fee_bps", self.maker_fee_bps)?,
            taker_fee: r("taker_fee_bps", self.taker_fee_bps)?,
            vol_lambda: r("vol_lambda_bps", self.vol_lambda_bps)?,
            vol_k: r("vol_k_bps", self.vol_k_bps)?,
            vol_floor: r("vol_floor_bps", self.vol_floor_bps)?,
            vol_cap: r("vol_cap_bps", self.vol_cap_bps)?,
            oi_cap: self.oi_cap,
            account_oi_share_bps: self.account_oi_share_bps,
            max_mark_move_bps: self.max_mark_move_bps,
            liquidation: match &self.liquidation {
                Some(l) => Some(l.liquidation_config(&format!("{key}.liquidation"))?),
                None => None,
            },
        })
    }
}

impl LiquidationSpec {
    fn liquidation_config(&self, key: &str) -> Result<LiquidationConfig, ConfigError> {
        let r = |f: &str, v: i64| rate(&format!("{key}.{f}"), v);
        let adl = match self.adl.as_str() {
            "queue" => AdlMode::Queue,
            "pro-rata" => AdlMode::ProRata,
            _ => return Err(bad(format!("{key}.adl"), "`queue` or `pro-rata`")),
        };
        Ok(LiquidationConfig {
            buffer: r("buffer_bps", self.buffer_bps)?,
            min_notional: self.min_notional,
            band_bps: self.band_bps,
            fee_rate: r("fee_bps", self.fee_bps)?,
            adl,
            order_margin: self.order_margin,
            fund_haircut: r("fund_haircut_bps", self.fund_haircut_bps)?,
            unwind_rate: r("unwind_rate_bps", self.unwind_rate_bps)?,
            isolated_fund: self.isolated_fund,
        })
    }
}

/// A rate from basis points; refuses values the 32.32 fixed-point rate cannot hold.
fn rate(key: &str, bp: i64) -> Result<Rate, ConfigError> {
    if bp.abs() > 100_000_000 {
        return Err(bad(key, "out of range (at most ±100000000 bps)"));
    }
    Ok(bps(bp))
}
