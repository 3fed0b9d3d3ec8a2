//! Risk parameters of a leveraged market and the integer arithmetic of margin.
//!
//! Rates are [`Rate`] (`fixed` I32F32); every conversion to atoms goes through
//! [`mul_rate_up`] or [`mul_rate_down`], so each rounding names its direction.
//! Invariants of a validated config: tiers have strictly increasing notional caps and
//! non-decreasing rates in `(0, 1)`; the initial margin rate at maximum leverage is at
//! least every tier's maintenance rate; `taker_fee >= 0` and `taker_fee >= -maker_fee`
//! (a rebate never exceeds the fee that pays it); `0 < vol_floor <= vol_cap <= 16`.

use fixed::types::I32F32;

/// A rate or ratio: signed 32.32 fixed point.
pub type Rate = I32F32;

/// A rate of `bp` basis points: `bp / 10_000`, rounded toward zero to a multiple of 2^-32.
pub fn bps(bp: i64) -> Rate {
    Rate::from_bits(bp * (1 << 32) / 10_000)
}

/// Most risk-limit tiers per market.
pub const MAX_TIERS: usize = 8;

/// The `tiers`/`tier_count` pair of a [`RiskConfig`] from `(max_notional, mm_rate)`
/// rows, ascending. Panics (a programmer error) with more than [`MAX_TIERS`] rows.
pub fn tier_table(rows: &[(i64, Rate)]) -> ([Tier; MAX_TIERS], u8) {
    assert!(rows.len() <= MAX_TIERS, "at most {MAX_TIERS} risk tiers");
    let mut tiers = [Tier::default(); MAX_TIERS];
    for (t, &(max_notional, mm_rate)) in tiers.iter_mut().zip(rows) {
        *t = Tier {
            max_notional,
            mm_rate,
        };
    }
    (tiers, rows.len() as u8)
}

/// One risk-limit tier: positions with notional up to `max_notional` use `mm_rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tier {
    /// Largest position notional (quote atoms) in this tier.
    pub max_notional: i64,
    /// Maintenance margin rate.
    pub mm_rate: Rate,
}

/// Margin, fee, volatility and guard parameters of a leveraged market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskConfig {
    /// Highest leverage an account may set (initial margin rate = 1 / leverage).
    pub max_leverage: u32,
    /// Risk-limit tiers, ascending; entries past `tier_count` are ignored.
    pub tiers: [Tier; MAX_TIERS],
    /// Number of tiers in use (1..=MAX_TIERS). The last cap is the largest position.
    pub tier_count: u8,
    /// Maker fee rate; negative is a rebate.
    pub maker_fee: Rate,
    /// Taker fee rate.
    pub taker_fee: Rate,
    /// EWMA weight of the newest absolute mark return, in `[0, 1]`.
    pub vol_lambda: Rate,
    /// Margin scale = clamp(1 + vol_k × ewma, vol_floor, vol_cap).
    pub vol_k: Rate,
    /// Lowest margin scale.
    pub vol_floor: Rate,
    /// Highest margin scale.
    pub vol_cap: Rate,
    /// Largest open interest (lots, one side).
    pub oi_cap: i64,
    /// Largest share of `oi_cap` one account's worst-case position may take, in bps.
    pub account_oi_share_bps: u32,
    /// Largest move of a mark update from the previous mark, in bps; larger is refused.
    pub max_mark_move_bps: u32,
    /// Liquidation parameters; `None`: positions are never liquidated (margin-model
    /// studies and tests of the margin rules alone).
    pub liquidation: Option<LiquidationConfig>,
}

/// How auto-deleveraging chooses the opposite positions that absorb a loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdlMode {
    /// Whole positions in rank order: unrealised PnL% × effective leverage (PnL% ÷
    /// leverage for losing positions), highest first, ties by account id.
    Queue,
    /// The uncovered size spread over profitable opposite positions in proportion to
    /// their size; losing positions only if the profitable ones are not enough.
    ProRata,
}

/// Liquidation parameters of a leveraged market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiquidationConfig {
    /// Partial liquidation aims at maintenance margin × (1 + `buffer`).
    pub buffer: Rate,
    /// A position whose notional at mark would fall below this is closed whole.
    pub min_notional: i64,
    /// Band of the first liquidation order around the mark, in bps, at zero depth; it
    /// widens linearly to twice this at depth ≥ 1 (equity ≤ 0).
    pub band_bps: u32,
    /// Base liquidation fee rate; see `SEMANTICS.md` for the formula.
    pub fee_rate: Rate,
    /// Auto-deleveraging mode.
    pub adl: AdlMode,
    /// Order margin: after every command, a pool resting orders here that is below
    /// initial margin loses all its resting orders (`CancelReason::Margin`). It costs an
    /// index update per order command; without it, resting orders are margin-checked only
    /// when placed (and cancelled when their pool is liquidated).
    pub order_margin: bool,
    /// Haircut on the insurance fund's position in this market when its capacity is
    /// judged: the fund may take over only while its equity stays at or above
    /// `Σ ceil(|fund size| × mark × fund_haircut)`. In `[0, 1]`.
    pub fund_haircut: Rate,
    /// Share of the visible opposite depth within the band that the fund's unwind order
    /// takes per command, in `[0, 1]` (0: the fund never unwinds here).
    pub unwind_rate: Rate,
    /// The market has an insurance fund of its own (Bybit's per-pair pools): its own
    /// cash and positions, deposits with `InsuranceDeposit { market: Some(m) }`. Markets
    /// without it share one fund.
    pub isolated_fund: bool,
}

/// Why a risk configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskConfigError {
    /// Leverage 0.
    BadLeverage,
    /// Tier count, caps or rates out of order or range, or MM above IM at max leverage.
    BadTiers,
    /// Fee rates allow a rebate larger than the fee, or a negative taker fee.
    BadFees,
    /// Volatility parameters out of range.
    BadVolatility,
    /// OI cap or account share out of range, or `max_price × oi_cap` too large.
    BadOpenInterest,
    /// Liquidation parameters out of range, or `vol_cap × mm_rate ≥ 1` for some tier.
    BadLiquidation,
}

/// Largest notional (quote atoms) a market may reach: keeps every i128 product far from
/// overflow and every per-trade amount inside `i64`.
pub const MAX_NOTIONAL: i64 = 1 << 61;

impl RiskConfig {
    /// The tiers in use.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers[..usize::from(self.tier_count).min(MAX_TIERS)]
    }

    /// Checks the module invariants; `max_price` is the market's highest price.
    pub fn validate(&self, max_price: i64) -> Result<(), RiskConfigError> {
        if self.max_leverage == 0 {
            return Err(RiskConfigError::BadLeverage);
        }
        let tiers = self.tiers();
        let ordered = tiers
            .windows(2)
            .all(|w| w[0].max_notional < w[1].max_notional && w[0].mm_rate <= w[1].mm_rate);
        let in_range = tiers.iter().all(|t| {
            t.max_notional > 0 && t.mm_rate > 0 && t.mm_rate < Rate::ONE
            // MM rate ≤ IM rate at max leverage, i.e. mm × max_leverage ≤ 1, exactly.
            && i128::from(t.mm_rate.to_bits()) * i128::from(self.max_leverage) <= 1 << 32
        });
        if tiers.is_empty() || usize::from(self.tier_count) > MAX_TIERS || !ordered || !in_range {
            return Err(RiskConfigError::BadTiers);
        }
        if self.taker_fee < 0
            || self.taker_fee + self.maker_fee < 0
            || self.taker_fee >= Rate::ONE
            || self.maker_fee >= Rate::ONE
        {
            return Err(RiskConfigError::BadFees);
        }
        let sixteen = Rate::from_bits(16 << 32);
        if self.vol_lambda < 0
            || self.vol_lambda > Rate::ONE
            || self.vol_k < 0
            || self.vol_k > sixteen
            || self.vol_floor <= 0
            || self.vol_floor > self.vol_cap
            || self.vol_cap > sixteen
        {
            return Err(RiskConfigError::BadVolatility);
        }
        let notional_ok = max_price
            .checked_mul(self.oi_cap)
            .is_some_and(|n| n <= MAX_NOTIONAL);
        if self.oi_cap <= 0
            || self.account_oi_share_bps == 0
            || self.account_oi_share_bps > 10_000
            || !notional_ok
        {
            return Err(RiskConfigError::BadOpenInterest);
        }
        if let Some(l) = &self.liquidation {
            // Equity − MM must grow with a long's price (and shrink with a short's):
            // vol_cap × every rate < 1 even rounded up to 2^-32, exactly (the trigger
            // and funding-drift formulas divide by 1 − ⌈cap × rate⌉).
            let cap_ok = tiers.iter().all(|t| {
                i128::from(self.vol_cap.to_bits()) * i128::from(t.mm_rate.to_bits())
                    <= (1 << 64) - (1 << 32)
            });
            if !cap_ok
                || l.buffer < 0
                || l.buffer > Rate::from_bits(16 << 32)
                || l.min_notional < 0
                || l.band_bps > 5_000
                || l.fee_rate < 0
                || l.fee_rate >= Rate::ONE
                || !(Rate::ZERO..=Rate::ONE).contains(&l.fund_haircut)
                || !(Rate::ZERO..=Rate::ONE).contains(&l.unwind_rate)
            {
                return Err(RiskConfigError::BadLiquidation);
            }
        }
        Ok(())
    }

    /// Largest worst-case position (lots) one account may hold: its share of `oi_cap`,
    /// rounded down.
    pub fn account_cap(&self) -> i64 {
        // i64 first: i128 division by a constant is a library call, and this runs per order.
        match self
            .oi_cap
            .checked_mul(i64::from(self.account_oi_share_bps))
        {
            Some(v) => v / 10_000,
            None => {
                (i128::from(self.oi_cap) * i128::from(self.account_oi_share_bps) / 10_000) as i64
            }
        }
    }

    /// The maintenance lines `(rate bits, amount bits)` of the tiers, both × 2^32:
    /// tier `k` requires `n × rate_k − amount_k`, where `amount_0 = 0` and
    /// `amount_k = amount_{k−1} + cap_{k−1} × (rate_k − rate_{k−1})`, so the requirement
    /// is continuous across tiers and equals the upper envelope of the lines (rates rise).
    fn lines(&self) -> impl Iterator<Item = (i128, i128)> + '_ {
        let tiers = self.tiers();
        let mut amount_bits: i128 = 0; // exact
        tiers.iter().enumerate().map(move |(k, t)| {
            if k > 0 {
                let p = &tiers[k - 1];
                amount_bits += i128::from(p.max_notional)
                    * i128::from(t.mm_rate.to_bits() - p.mm_rate.to_bits());
            }
            (i128::from(t.mm_rate.to_bits()), amount_bits)
        })
    }

    /// Maintenance margin of a position of notional `n` before volatility scaling:
    /// `n × rate_k − amount_k` for the tier `k` holding `n` (the last tier beyond its
    /// cap); see [`RiskConfig::lines`]. Rounded up.
    pub fn maintenance_base(&self, n: i128) -> i128 {
        let last = self.tiers().len().saturating_sub(1);
        for (k, (rate, amount)) in self.lines().enumerate() {
            if k == last || n <= i128::from(self.tiers[k].max_notional) {
                return ceil_shift(n * rate - amount);
            }
        }
        0
    }

    /// A conservative trigger price of a position that is alone in its pool: with `size`
    /// lots, cost basis `cost` and pool money `money`, if the position is below
    /// maintenance margin at mark `p` under any scale up to `vol_cap`, then `p <= t` for
    /// a long and `p >= t` for a short. Results outside `[lo, hi]` (the market's band) are
    /// reported as `lo − 1` or `hi + 1`, which lets most positions skip the division.
    /// Derivation and rounding: `SEMANTICS.md`.
    pub fn trigger_price(&self, size: i64, cost: i128, money: i128, band: (i64, i64)) -> i64 {
        self.trigger_price_at(size, cost, money, band, self.vol_cap)
    }

    /// [`RiskConfig::trigger_price`] under any scale up to `scale` (at most `vol_cap`)
    /// instead of the cap: tighter while the market is calm.
    pub fn trigger_price_at(
        &self,
        size: i64,
        cost: i128,
        money: i128,
        (lo, hi): (i64, i64),
        scale: Rate,
    ) -> i64 {
        const ONE: i128 = 1 << 32;
        let (below, above) = (i128::from(lo) - 1, i128::from(hi) + 1);
        let cap = i128::from(scale.min(self.vol_cap).to_bits());
        let u = i128::from(size).abs();
        let mut t = if size > 0 { below } else { above };
        for (rate, amount) in self.lines() {
            let cap_rate = (cap * rate + ONE - 1) >> 32; // ceil(cap × rate), × 2^32
            let cap_amount = ((amount >> 32) * cap) >> 32; // floor(cap × amount), atoms
            if size > 0 {
                // size·p·(1 − cap·r) < cost − money − cap·A + cap + 1 (cap + 1 ≤ 17)
                let x = cost - money - cap_amount + 17;
                if cap_rate >= ONE {
                    return hi.saturating_add(1); // unreachable for a validated config
                }
                let den = u * (ONE - cap_rate);
                // Only a term above the best so far (and inside the band) needs dividing.
                // A term with x ≤ 0 triggers only at marks ≤ 0, but still counts: the band
                // keys are computed over may reach below 0 (funding drift, trigger.rs).
                if x.checked_mul(ONE)
                    .is_none_or(|n| t.checked_mul(den).is_some_and(|v| n > v))
                {
                    let tk = x
                        .checked_mul(ONE)
                        .map_or(if x > 0 { above } else { below }, |n| ceil_div(n, den));
                    t = t.max(tk.clamp(below, above));
                }
            } else {
                // |size|·p·(1 + cap·r) > money − cost + cap·A − 17
                let y = money - cost + cap_amount - 17;
                let den = u * (ONE + cap_rate);
                if y.checked_mul(ONE)
                    .is_none_or(|n| t.checked_mul(den).is_none_or(|v| n < v))
                {
                    let tk = y
                        .checked_mul(ONE)
                        .map_or(if y > 0 { above } else { below }, |n| n.div_euclid(den));
                    t = t.min(tk.max(below));
                }
            }
        }
        t as i64
    }
}

impl RiskConfig {
    /// How fast a long's liquidation trigger can rise per atom of funding paid per lot,
    /// at any scale up to `vol_cap`: `max 1 / (1 − cap × rate_k)` over the tier lines,
    /// rounded up (the funding drift of the trigger index, `SEMANTICS.md`).
    pub fn funding_kappa(&self) -> Rate {
        const ONE: i128 = 1 << 32;
        let cap = i128::from(self.vol_cap.to_bits());
        let worst = self
            .lines()
            .map(|(rate, _)| (cap * rate + ONE - 1) >> 32)
            .max()
            .unwrap_or(0);
        if worst >= ONE {
            return Rate::MAX; // unreachable for a validated config (`validate`)
        }
        let bits = ceil_div(ONE * ONE, ONE - worst);
        Rate::from_bits(i64::try_from(bits).unwrap_or(i64::MAX))
    }

    /// A conservative order-margin trigger of a pool holding one leveraged market with
    /// resting orders: `worst` lots worst case (position plus one side's orders) at
    /// `leverage`, signed `size`, `cost` and pool `money`. Returns `(fires_below, t)`: if
    /// the pool is below initial margin at mark `p` under any scale up to `vol_cap`, then
    /// `p <= t` when `fires_below`, else `p >= t`. Results outside `[lo, hi]` are reported
    /// as `lo − 1` or `hi + 1`. Derivation: `SEMANTICS.md`.
    pub fn order_trigger_price(
        &self,
        (size, cost, money): (i64, i128, i128),
        worst: i128,
        leverage: u32,
        (lo, hi): (i64, i64),
    ) -> (bool, i64) {
        const ONE: i128 = 1 << 32;
        let (below, above) = (i128::from(lo) - 1, i128::from(hi) + 1);
        let lev = i128::from(leverage.max(1));
        // IM ≤ worst·p·cap/lev + 2, so failing implies p·B < X with
        // B = size·lev·2^32 − worst·cap_bits and X = (cost − money + 2)·lev·2^32.
        let b = i128::from(size) * lev * ONE - worst * i128::from(self.vol_cap.to_bits());
        let x = (cost - money + 2).checked_mul(lev * ONE);
        let key = match (b.signum(), x) {
            (0, x) => {
                return (
                    true,
                    if x.is_none_or(|x| x > 0) {
                        hi + 1
                    } else {
                        lo - 1
                    },
                )
            }
            (1, None) => {
                if cost - money > 0 {
                    above
                } else {
                    below
                }
            }
            // Keys outside the band need no division (most pools are far from it).
            (1, Some(x)) if below.checked_mul(b).is_some_and(|v| x <= v) => below,
            (1, Some(x)) if i128::from(hi).checked_mul(b).is_some_and(|v| x > v) => above,
            (1, Some(x)) => ceil_div(x, b).clamp(below, above),
            (_, None) => {
                if cost - money > 0 {
                    below
                } else {
                    above
                }
            }
            (_, Some(x)) if above.checked_mul(-b).is_some_and(|v| -x >= v) => above,
            (_, Some(x)) if i128::from(lo).checked_mul(-b).is_some_and(|v| -x < v) => below,
            (_, Some(x)) => (-x).div_euclid(-b).clamp(below, above),
        };
        (b > 0, key as i64)
    }
}

/// `ceil(v / 2^32)`.
pub fn ceil_shift(v: i128) -> i128 {
    -((-v) >> 32)
}

/// `ceil(a / b)` for `b > 0`.
pub fn ceil_div(a: i128, b: i128) -> i128 {
    debug_assert!(b > 0);
    // Fast path: 64-bit division when both fit (the common case; i128 division is a
    // library call several times slower).
    if let (Ok(a), Ok(b)) = (i64::try_from(a), i64::try_from(b)) {
        if a != i64::MIN {
            return i128::from(-((-a).div_euclid(b)));
        }
    }
    -((-a).div_euclid(b))
}

/// `ceil(atoms × rate)`: requirements and fees (rounded against the account).
pub fn mul_rate_up(atoms: i128, rate: Rate) -> i128 {
    ceil_shift(atoms * i128::from(rate.to_bits()))
}

/// `floor(atoms × rate)`: payouts and rebates (rounded against the account).
pub fn mul_rate_down(atoms: i128, rate: Rate) -> i128 {
    (atoms * i128::from(rate.to_bits())) >> 32
}

/// Updates a market's volatility state after a mark move `prev → mark` (both > 0):
/// `r = |mark − prev| / prev` (rounded down), `ewma' = ewma + λ (r − ewma)` (floor),
/// `scale = clamp(1 + k × ewma', floor, cap)` (k × ewma' rounded up). Returns
/// `(ewma', scale)`.
pub fn update_volatility(cfg: &RiskConfig, ewma: Rate, prev: i64, mark: i64) -> (Rate, Rate) {
    let r_bits = (i128::from((mark - prev).unsigned_abs()) << 32) / i128::from(prev);
    let r = Rate::from_bits(r_bits.min(i128::from(i64::MAX >> 8)) as i64);
    let delta = (i128::from(cfg.vol_lambda.to_bits()) * i128::from((r - ewma).to_bits())) >> 32;
    let ewma = Rate::from_bits((i128::from(ewma.to_bits()) + delta) as i64);
    let scale_bits = i128::from(Rate::ONE.to_bits())
        + ceil_shift(i128::from(cfg.vol_k.to_bits()) * i128::from(ewma.to_bits()));
    let scale = Rate::from_bits(scale_bits.clamp(
        i128::from(cfg.vol_floor.to_bits()),
        i128::from(cfg.vol_cap.to_bits()),
    ) as i64);
    (ewma, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RiskConfig {
        let (tiers, tier_count) =
            tier_table(&[(1_000, bps(100)), (10_000, bps(200)), (100_000, bps(500))]);
        RiskConfig {
            max_leverage: 10,
            tiers,
            tier_count,
            maker_fee: bps(-1),
            taker_fee: bps(5),
            vol_lambda: bps(1_000),
            vol_k: Rate::from_bits(10 << 32),
            vol_floor: Rate::ONE,
            vol_cap: Rate::from_bits(3 << 32),
            oi_cap: 1_000,
            account_oi_share_bps: 2_500,
            max_mark_move_bps: 5_000,
            liquidation: None,
        }
    }

    #[test]
    fn maintenance_is_continuous_at_every_tier_boundary() {
        let c = cfg();
        for t in &c.tiers()[..2] {
            let at = c.maintenance_base(i128::from(t.max_notional));
            let above = c.maintenance_base(i128::from(t.max_notional) + 1);
            // One atom more notional raises the requirement by at most one atom (+ rounding).
            assert!(
                above >= at && above - at <= 1,
                "jump at {}: {at} -> {above}",
                t.max_notional
            );
        }
        // Past the last cap the last tier's line continues.
        let last = c.maintenance_base(100_000);
        assert_eq!(c.maintenance_base(200_000) - last, 5_000);
    }

    #[test]
    fn basis_points_round_toward_zero() {
        assert_eq!(bps(10_000), Rate::ONE);
        // 5 bp = 2,147,483.648 / 2^32: the fraction is dropped.
        assert_eq!(bps(5).to_bits(), 2_147_483);
        assert_eq!(bps(-5).to_bits(), -2_147_483);
    }

    #[test]
    fn rounding_directions() {
        let third = Rate::from_bits(1 << 32) / 3;
        assert_eq!(mul_rate_up(10, third), 4);
        assert_eq!(mul_rate_down(10, third), 3);
        assert_eq!(mul_rate_up(-10, third), -3, "up means toward +infinity");
        assert_eq!(ceil_div(7, 2), 4);
        assert_eq!(ceil_div(-7, 2), -3);
        assert_eq!(ceil_shift(1), 1);
    }

    #[test]
    fn validation_rejects_each_bad_field() {
        let ok = cfg();
        assert_eq!(ok.validate(100), Ok(()));
        assert_eq!(
            RiskConfig {
                max_leverage: 0,
                ..ok
            }
            .validate(100),
            Err(RiskConfigError::BadLeverage)
        );
        assert_eq!(
            RiskConfig {
                max_leverage: 50,
                ..ok
            }
            .validate(100),
            Err(RiskConfigError::BadTiers),
            "MM above IM"
        );
        assert_eq!(
            RiskConfig {
                tier_count: 0,
                ..ok
            }
            .validate(100),
            Err(RiskConfigError::BadTiers)
        );
        assert_eq!(
            RiskConfig {
                maker_fee: bps(-10),
                ..ok
            }
            .validate(100),
            Err(RiskConfigError::BadFees)
        );
        assert_eq!(
            RiskConfig {
                vol_floor: Rate::ZERO,
                ..ok
            }
            .validate(100),
            Err(RiskConfigError::BadVolatility)
        );
        assert_eq!(
            ok.validate(i64::MAX / 10),
            Err(RiskConfigError::BadOpenInterest)
        );
    }

    #[test]
    fn volatility_scale_rises_with_moves_and_stays_in_bounds() {
        let c = cfg();
        let (e1, s1) = update_volatility(&c, Rate::ZERO, 100, 100);
        assert_eq!((e1, s1), (Rate::ZERO, Rate::ONE));
        let (e2, s2) = update_volatility(&c, e1, 100, 110); // r = 0.1, ewma = 0.01
        assert!(e2 > 0 && s2 > Rate::ONE && s2 <= c.vol_cap);
        let (_, s3) = update_volatility(&c, Rate::from_bits(5 << 32), 100, 150);
        assert_eq!(s3, c.vol_cap);
    }
}
