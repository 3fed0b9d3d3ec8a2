//! Money, positions and margin: collateral (cross balance and isolated buckets), fills
//! turned into positions and realised PnL, fees, mark price and volatility, funding,
//! and the initial-margin check on every order.
//!
//! Invariants (checked by [`Engine::verify`]): for every leveraged market the long sizes
//! sum to the short sizes and to `oi`; `backing` equals the money of the pools (cross
//! balance or bucket) of the accounts with a position there; `buy_open`/`sell_open`
//! equal the account's resting quantity per side. Money only moves between ledgers:
//! `Σ collateral + Σ buckets − Σ cost + fee_ledger` changes only by deposits and
//! withdrawals (a fill moves `price × qty` of cost between the two sides).

use super::{Engine, Out};
use crate::command::{CommandKind, NewOrder};
use crate::event::{EventKind, EventSink, RejectReason};
use crate::pool::NIL;
use crate::risk::{
    ceil_div, ceil_shift, mul_rate_down, mul_rate_up, update_volatility, Rate, RiskConfig,
};
use crate::types::{AccountId, MarketId, Price, Side};

/// Largest balance any ledger may reach; deposits beyond it are refused.
pub const MAX_COLLATERAL: i128 = 1 << 100;

/// One account's state in one market: what every position needs (48 bytes). Isolated
/// margin and resting quantities, which only some pairs have, are in its [`Extra`]
/// (`positions.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Position {
    /// Signed size in lots (negative: short).
    pub(super) size: i64,
    /// Signed cost basis: Σ price × signed lots of the open position.
    pub(super) cost: i128,
    /// Leverage chosen (0: the market's maximum).
    pub(super) leverage: u32,
    /// The market's funding index when the position last changed (0 while flat):
    /// funding accrued since is `size × (index − funding)` (`funding.rs`).
    pub(super) funding: i128,
    /// Index of the pair's [`Extra`], `NIL` if it has none.
    pub(super) extra: u32,
}

impl Default for Position {
    fn default() -> Self {
        super::positions::DEFAULT_POSITION
    }
}

/// A read-only view of one account's position in one market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionView {
    /// Signed size (lots).
    pub size: i64,
    /// Signed cost basis (atoms).
    pub cost: i128,
    /// Effective leverage setting.
    pub leverage: u32,
    /// Isolated mode.
    pub isolated: bool,
    /// Isolated bucket balance.
    pub bucket: i128,
    /// Resting buy quantity (kept in leveraged markets only: 0 where there is no margin).
    pub buy_open: i64,
    /// Resting sell quantity (leveraged markets only, as `buy_open`).
    pub sell_open: i64,
}

/// Margin figures of one account's cross pool, plus its total exposure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountRisk {
    /// Cross collateral.
    pub collateral: i128,
    /// Cross equity: collateral + unrealised PnL of cross positions at mark.
    pub equity: i128,
    /// Cross initial margin, resting orders included.
    pub initial: i128,
    /// Cross maintenance margin.
    pub maintenance: i128,
    /// Σ |size| × mark over all positions, cross and isolated.
    pub notional: i128,
    /// Account leverage: notional / (cross equity + isolated equities); `None` if that is ≤ 0.
    pub leverage: Option<Rate>,
}

/// Aggregates of one leveraged market, all maintained incrementally (O(1) to read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketRisk {
    /// Mark price (0: none yet).
    pub mark: i64,
    /// Volatility margin scale.
    pub scale: Rate,
    /// Open interest in lots (one side).
    pub open_interest: i64,
    /// Open interest × mark.
    pub oi_notional: i128,
    /// Collateral of the accounts holding positions here.
    pub backing: i128,
    /// Aggregate leverage ratio: oi_notional / backing; `None` if backing ≤ 0.
    pub leverage: Option<Rate>,
}

/// Which balance backs a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum PoolId {
    /// The account's cross balance and all its non-isolated positions.
    #[default]
    Cross,
    /// One isolated position and its bucket.
    Isolated(MarketId),
}

/// `n / d` as a rate, rounded down; `None` if `d <= 0` or the ratio does not fit.
fn ratio(n: i128, d: i128) -> Option<Rate> {
    if d <= 0 {
        return None;
    }
    let bits = n.checked_mul(1 << 32)? / d;
    i64::try_from(bits).ok().map(Rate::from_bits)
}

/// Applies a trade of `q` lots at `price` on `side` to a position; returns the realised
/// PnL. Increasing: `cost += signed qty × price`. Reducing `c = min(q, |size|)` lots:
/// `released = ceil(cost × c / |size|)` (rounded up: the realised PnL
/// `−signed c × price − released` is rounded against the holder), then any remainder
/// opens the other way.
pub(super) fn trade(size: &mut i64, cost: &mut i128, side: Side, q: i64, price: i64) -> i128 {
    let dir: i64 = if side == Side::Buy { 1 } else { -1 };
    let px = i128::from(price);
    let mut realised: i128 = 0;
    let mut open = q;
    if *size != 0 && size.signum() != dir {
        let c = q.min(size.abs());
        let released = ceil_div(*cost * i128::from(c), i128::from(size.abs()));
        realised = -i128::from(dir * c) * px - released;
        *cost -= released;
        *size += dir * c;
        open = q - c;
    }
    *cost += i128::from(dir * open) * px;
    *size += dir * open;
    realised
}

pub(super) fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl Engine {
    /// True if `a` is below `max_accounts` and `m` names an added market: the ids a
    /// public query may pass to [`Engine::pos`].
    fn has_pos(&self, a: AccountId, m: MarketId) -> bool {
        a.0 < self.cfg.max_accounts && (m.0 as usize) < self.markets.len()
    }

    pub(super) fn risk_of(&self, m: MarketId) -> Option<&RiskConfig> {
        self.markets[m.0 as usize].book.cfg.risk.as_ref()
    }

    pub(super) fn pool_of(&self, a: AccountId, m: MarketId) -> PoolId {
        if self.is_isolated(self.pos(a, m)) {
            PoolId::Isolated(m)
        } else {
            PoolId::Cross
        }
    }

    /// The pool's settled money: cross balance or isolated bucket.
    pub(super) fn pool_cash(&self, a: AccountId, pool: PoolId) -> i128 {
        match pool {
            PoolId::Cross => self.accounts[a.0 as usize].collateral,
            PoolId::Isolated(m) => self.extra(a, m).bucket,
        }
    }

    /// The pool's money with its positions' unsettled funding applied (`funding.rs`):
    /// what every margin figure starts from.
    pub(super) fn pool_money(&self, a: AccountId, pool: PoolId) -> i128 {
        let due: i128 = self
            .pool_positions(a, pool)
            .filter(|(m, p)| p.size != 0 && self.risk_of(*m).is_some())
            .map(|(m, p)| self.funding_due(m, p))
            .sum();
        self.pool_cash(a, pool) - due
    }

    /// Adds `sign ×` the pool's money to the backing of every market where the pool
    /// holds a position. Called with −1 before and +1 after any change to the pool's
    /// money or positions, which keeps `backing` exact.
    pub(super) fn back(&mut self, a: AccountId, pool: PoolId, sign: i128) {
        let money = self.pool_cash(a, pool);
        let mut s = self.first_slot(a);
        while s != NIL {
            let (m, p) = (self.slot_market(s), &self.slots.pos[s as usize]);
            let in_pool = self.risk_of(m).is_some()
                && match pool {
                    PoolId::Cross => !self.is_isolated(p),
                    PoolId::Isolated(i) => i == m,
                };
            if in_pool && p.size != 0 {
                self.markets[m.0 as usize].backing += sign * money;
            }
            s = self.next_slot(s);
        }
    }

    /// Adds `delta` atoms to a pool's money.
    pub(super) fn credit(&mut self, a: AccountId, pool: PoolId, delta: i128) {
        self.back(a, pool, -1);
        match pool {
            PoolId::Cross => self.accounts[a.0 as usize].collateral += delta,
            PoolId::Isolated(m) => self.extra_mut(a, m).bucket += delta,
        }
        self.back(a, pool, 1);
        self.touch(a, pool);
    }

    /// Keeps the per-side resting quantity of the order's account in step with the book
    /// (in leveraged markets: plain ones have no margin to compute from it).
    pub(super) fn adjust_open(&mut self, slot: u32, delta: i64) {
        let o = self.pool[slot];
        if self.risk_of(o.market).is_none() {
            return;
        }
        let p = self.extra_mut(o.account, o.market);
        match o.side {
            Side::Buy => p.buy_open += delta,
            Side::Sell => p.sell_open += delta,
        }
        self.release_if_default(o.account, o.market);
        self.queue_im(o.account);
    }

    /// `(maker fee, taker fee)` of a trade: fees round up, rebates round down.
    pub(super) fn fees(&self, m: MarketId, price: Price, q: i64) -> (i64, i64) {
        let Some(r) = self.risk_of(m) else {
            return (0, 0);
        };
        let n = i128::from(price.0) * i128::from(q);
        let fee = |rate: Rate| {
            if rate >= 0 {
                mul_rate_up(n, rate)
            } else {
                -mul_rate_down(n, -rate)
            }
        };
        (saturate(fee(r.maker_fee)), saturate(fee(r.taker_fee)))
    }

    /// Applies one side of a fill to the account's position ([`trade`]) and money: the
    /// pool receives `realised − fee`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn settle<S: EventSink>(
        &mut self,
        m: MarketId,
        a: AccountId,
        side: Side,
        price: Price,
        q: i64,
        fee: i64,
        out: &mut Out<S>,
    ) {
        let pool = self.pool_of(a, m);
        self.queue_reduce_only(a);
        self.back(a, pool, -1);
        // Funding accrued at the old size is settled first (`funding.rs`); the snapshot
        // then restarts at the index (0 when flat).
        let index = self.markets[m.0 as usize].funding.index;
        let p = self.pos_mut(a, m);
        let owed = i128::from(p.size) * (index - p.funding);
        let old = p.size;
        let realised = trade(&mut p.size, &mut p.cost, side, q, price.0);
        p.funding = if p.size == 0 { 0 } else { index };
        let money = realised - i128::from(fee) - ceil_shift(owed);
        let p = *p;
        match pool {
            PoolId::Cross => self.accounts[a.0 as usize].collateral += money,
            PoolId::Isolated(_) => self.extra_mut(a, m).bucket += money,
        }
        let paid = self.book_settlement(m, owed);
        self.fee_ledger += i128::from(fee);
        self.markets[m.0 as usize].oi += p.size.max(0) - old.max(0);
        self.back(a, pool, 1);
        self.touch(a, pool);
        self.release_if_default(a, m);
        out.emit(EventKind::PositionChanged {
            account: a,
            market: m,
            size: p.size,
            cost: p.cost,
            realised: saturate(realised),
            funding: saturate(-paid),
        });
    }

    pub(super) fn worst_lots(
        &self,
        a: AccountId,
        m: MarketId,
        (extra_buy, extra_sell): (i64, i64),
    ) -> i128 {
        let p = self.pos(a, m);
        let x = self.extra_of(p);
        // Widened before adding: an IOC or market order's `extra` may be up to `max_qty`
        // (no level bounds it), which with the resting quantity can exceed `i64`.
        let (size, buys, sells) = (
            i128::from(p.size),
            i128::from(x.buy_open) + i128::from(extra_buy),
            i128::from(x.sell_open) + i128::from(extra_sell),
        );
        (size + buys).abs().max((size - sells).abs())
    }

    /// Maintenance margin of one position: the tiered base on `|size| × mark`, scaled
    /// by volatility, rounded up.
    pub(super) fn maintenance_margin(&self, a: AccountId, m: MarketId) -> i128 {
        self.maintenance_of(m, self.pos(a, m))
    }

    /// [`Engine::maintenance_margin`] of a position already looked up.
    pub(super) fn maintenance_of(&self, m: MarketId, p: &Position) -> i128 {
        let Some(r) = self.risk_of(m) else {
            return 0;
        };
        let mk = &self.markets[m.0 as usize];
        let n = i128::from(p.size).abs() * i128::from(mk.mark);
        mul_rate_up(r.maintenance_base(n), mk.scale)
    }

    /// Unrealised PnL at the mark of a position already looked up.
    fn upnl_of(&self, m: MarketId, p: &Position) -> i128 {
        i128::from(p.size) * i128::from(self.markets[m.0 as usize].mark) - p.cost
    }

    /// The account's positions holding state, ascending market: O(positions held).
    pub(super) fn account_positions(
        &self,
        a: AccountId,
    ) -> impl Iterator<Item = (MarketId, &Position)> + '_ {
        let mut s = self.first_slot(a);
        std::iter::from_fn(move || {
            let cur = s;
            (cur != NIL).then(|| {
                s = self.next_slot(cur);
                (self.slot_market(cur), &self.slots.pos[cur as usize])
            })
        })
    }

    /// The positions of one pool holding state, ascending market.
    pub(super) fn pool_positions(
        &self,
        a: AccountId,
        pool: PoolId,
    ) -> impl Iterator<Item = (MarketId, &Position)> + '_ {
        self.account_positions(a).filter(move |&(m, p)| match pool {
            PoolId::Cross => !self.is_isolated(p),
            PoolId::Isolated(i) => i == m,
        })
    }

    /// `(equity, initial margin)` of a pool, with `extra` resting lots (buys, sells) in
    /// market `at` and an optional leverage override there. Each market's IM is
    /// `ceil(ceil(worst × mark × scale) / leverage)`, where `worst` is the larger of
    /// `|size + buys|` and `|size − sells|`.
    pub(super) fn pool_margin(
        &self,
        a: AccountId,
        pool: PoolId,
        at: Option<(MarketId, (i64, i64), Option<u32>)>,
    ) -> (i128, i128) {
        let mut equity = self.pool_cash(a, pool);
        let mut im = 0;
        let mut add = |mi: usize, p: &Position| {
            let mk = &self.markets[mi];
            let Some(r) = mk.book.cfg.risk.as_ref() else {
                return;
            };
            let x = self.extra_of(p);
            if pool == PoolId::Cross && x.isolated {
                return;
            }
            let focus = at.filter(|&(am, _, _)| am.0 as usize == mi);
            if p.size == 0 && x.buy_open == 0 && x.sell_open == 0 && focus.is_none() {
                return;
            }
            let ((extra_buy, extra_sell), lev) = focus.map_or(((0, 0), None), |(_, e, l)| (e, l));
            let size = i128::from(p.size);
            let worst = (size + i128::from(x.buy_open) + i128::from(extra_buy))
                .abs()
                .max((size - i128::from(x.sell_open) - i128::from(extra_sell)).abs());
            let lev = lev.unwrap_or(if p.leverage == 0 {
                r.max_leverage
            } else {
                p.leverage
            });
            equity +=
                size * i128::from(mk.mark) - p.cost - self.funding_due(MarketId(mi as u32), p);
            if worst != 0 {
                im += ceil_div(
                    mul_rate_up(worst * i128::from(mk.mark), mk.scale),
                    i128::from(lev),
                );
            }
        };
        // One pass over the pool's slots (this runs on every order in a leveraged
        // market), then the focus market if it has none: its default state is cross.
        match pool {
            PoolId::Cross => {
                let mut s = self.first_slot(a);
                while s != NIL {
                    add(self.slot_market(s).0 as usize, &self.slots.pos[s as usize]);
                    s = self.next_slot(s);
                }
            }
            PoolId::Isolated(m) => {
                if let Some(s) = self.slot_of(a, m) {
                    add(m.0 as usize, &self.slots.pos[s as usize]);
                }
            }
        }
        if let Some((m, _, _)) = at.filter(|&(m, _, _)| self.slot_of(a, m).is_none()) {
            add(m.0 as usize, &Position::default());
        }
        (equity, im)
    }

    /// `(equity, maintenance margin, holds a position in a market that liquidates now)`
    /// of a pool at the current marks (halted markets do not liquidate).
    pub(super) fn pool_maintenance(&self, a: AccountId, pool: PoolId) -> (i128, i128, bool) {
        let mut equity = self.pool_cash(a, pool);
        let (mut mm, mut held) = (0, false);
        for (m, p) in self.pool_positions(a, pool) {
            if self.risk_of(m).is_none() || p.size == 0 {
                continue;
            }
            held |= self.liquidates_now(m);
            equity += self.upnl_of(m, p) - self.funding_due(m, p);
            mm += self.maintenance_of(m, p);
        }
        (equity, mm, held)
    }

    fn require(equity: i128, need: i128) -> Result<(), RejectReason> {
        if equity >= need {
            Ok(())
        } else {
            Err(RejectReason::InsufficientMargin {
                shortfall: saturate(need - equity),
            })
        }
    }

    /// Risk checks of a new order, after book validation: reduce-only, mark, position
    /// limits, open-interest guards, initial margin.
    pub(super) fn check_new_order_risk(
        &self,
        o: &NewOrder,
        limit: Price,
    ) -> Result<(), RejectReason> {
        if self.risk_of(o.market).is_none() {
            return if o.reduce_only {
                Err(RejectReason::NotLeveraged)
            } else {
                Ok(())
            };
        }
        if self.markets[o.market.0 as usize].mark == 0 {
            return Err(RejectReason::NoMarkPrice);
        }
        if o.reduce_only {
            return self.check_reduce_only(o.account, o.market, o.side, o.qty.0, None);
        }
        self.check_exposure(o.account, o.market, o.side, limit, o.qty.0, 0)
    }

    /// Exposure checks for adding `add` lots at `limit` on `side` (replacing `removed`
    /// resting lots of the same side): worst-case notional within the last tier,
    /// worst-case lots within the account's share of the OI cap, OI after a full fill
    /// within the cap, and `equity ≥ IM + open loss + fee reserve`, where the open loss
    /// is what filling at `limit` instead of the mark would cost and the fee reserve is
    /// the larger fee rate on `limit × add`, rounded up, plus two atoms per lot (one
    /// fill per lot at most, each rounding its fee up and its realised PnL down by
    /// less than one atom), so the account still meets IM after the order trades.
    pub(super) fn check_exposure(
        &self,
        a: AccountId,
        m: MarketId,
        side: Side,
        limit: Price,
        add: i64,
        removed: i64,
    ) -> Result<(), RejectReason> {
        let Some(r) = self.risk_of(m) else {
            return Ok(());
        };
        let mk = &self.markets[m.0 as usize];
        if mk.mark == 0 {
            return Err(RejectReason::NoMarkPrice);
        }
        let extra = match side {
            Side::Buy => (add - removed, 0),
            Side::Sell => (0, add - removed),
        };
        let worst = self.worst_lots(a, m, extra);
        let last_cap = r.tiers().last().map_or(0, |t| t.max_notional);
        if worst * i128::from(mk.mark) > i128::from(last_cap) {
            return Err(RejectReason::PositionLimit);
        }
        if worst > i128::from(r.account_cap()) {
            return Err(RejectReason::AccountOpenInterestCap);
        }
        let size = self.pos(a, m).size;
        let dir: i64 = if side == Side::Buy { 1 } else { -1 };
        let grow = (i128::from(size) + i128::from(dir * add)).abs() - i128::from(size).abs();
        if i128::from(mk.oi) + grow.max(0) > i128::from(r.oi_cap) {
            return Err(RejectReason::OpenInterestCap);
        }
        let (equity, im) = self.pool_margin(a, self.pool_of(a, m), Some((m, extra, None)));
        let gap = match side {
            Side::Buy => i128::from(limit.0) - i128::from(mk.mark),
            Side::Sell => i128::from(mk.mark) - i128::from(limit.0),
        };
        let open_loss = gap.max(0) * i128::from(add);
        let fee_rate = r.taker_fee.max(r.maker_fee).max(Rate::ZERO);
        let fee_reserve =
            mul_rate_up(i128::from(limit.0) * i128::from(add), fee_rate) + 2 * i128::from(add);
        Self::require(equity, im + open_loss + fee_reserve)
    }

    /// Account, money and oracle commands.
    pub(super) fn risk_command<S: EventSink>(
        &mut self,
        kind: &CommandKind,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        match *kind {
            CommandKind::Deposit { account, amount } => {
                self.check_account(account)?;
                if amount <= 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                if self.pool_money(account, PoolId::Cross) + i128::from(amount) > MAX_COLLATERAL {
                    return Err(RejectReason::CollateralLimit);
                }
                self.credit(account, PoolId::Cross, i128::from(amount));
                let collateral = self.pool_money(account, PoolId::Cross);
                out.emit(EventKind::Deposited {
                    account,
                    amount,
                    collateral,
                });
            }
            CommandKind::Withdraw { account, amount } => {
                self.check_account(account)?;
                if amount <= 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                self.check_pool_release(account, PoolId::Cross, amount)?;
                self.credit(account, PoolId::Cross, -i128::from(amount));
                let collateral = self.pool_money(account, PoolId::Cross);
                out.emit(EventKind::Withdrawn {
                    account,
                    amount,
                    collateral,
                });
            }
            CommandKind::SetLeverage {
                account,
                market,
                leverage,
            } => {
                let r = self.leveraged(account, market)?;
                if leverage == 0 || leverage > r.max_leverage {
                    return Err(RejectReason::BadLeverage);
                }
                let (equity, im) = self.pool_margin(
                    account,
                    self.pool_of(account, market),
                    Some((market, (0, 0), Some(leverage))),
                );
                Self::require(equity, im)?;
                self.reserve_position(account, market)?;
                self.pos_mut(account, market).leverage = leverage;
                self.queue_im(account);
                out.emit(EventKind::LeverageSet {
                    account,
                    market,
                    leverage,
                });
            }
            CommandKind::SetMarginMode {
                account,
                market,
                isolated,
            } => {
                self.leveraged(account, market)?;
                let p = *self.pos(account, market);
                let x = *self.extra_of(&p);
                if p.size != 0 || x.buy_open != 0 || x.sell_open != 0 {
                    return Err(RejectReason::PositionOrOrdersOpen);
                }
                if isolated {
                    self.reserve_position(account, market)?;
                }
                // The bucket backs nothing (no position here), but the cross balance it
                // returns to backs the account's other cross positions: credit() keeps
                // their backing exact.
                if isolated || x.isolated {
                    let q = self.extra_mut(account, market);
                    q.bucket = 0;
                    q.isolated = isolated;
                }
                self.release_if_default(account, market);
                self.credit(account, PoolId::Cross, x.bucket);
                out.emit(EventKind::MarginModeSet {
                    account,
                    market,
                    isolated,
                });
            }
            CommandKind::TransferIsolated {
                account,
                market,
                amount,
            } => {
                self.leveraged(account, market)?;
                if !self.extra(account, market).isolated {
                    return Err(RejectReason::NotIsolated);
                }
                if amount == 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                let (from, to) = if amount > 0 {
                    (PoolId::Cross, PoolId::Isolated(market))
                } else {
                    (PoolId::Isolated(market), PoolId::Cross)
                };
                self.check_pool_release(account, from, amount.saturating_abs())?;
                self.credit(account, from, -i128::from(amount.saturating_abs()));
                self.credit(account, to, i128::from(amount.saturating_abs()));
                let bucket = self.pool_money(account, PoolId::Isolated(market));
                out.emit(EventKind::IsolatedTransferred {
                    account,
                    market,
                    amount,
                    bucket,
                });
            }
            CommandKind::InsuranceDeposit { market, amount } => {
                if let Some(m) = market {
                    self.market(m)?;
                    if self.fund_of(m.0 as usize).is_none() {
                        return Err(RejectReason::NoIsolatedFund);
                    }
                }
                if amount <= 0 {
                    return Err(RejectReason::NonPositiveAmount);
                }
                if self.fund_cash(market) + i128::from(amount) > MAX_COLLATERAL {
                    return Err(RejectReason::CollateralLimit);
                }
                self.change_fund(market, i128::from(amount), out);
            }
            CommandKind::MarkPrice { market, price } => {
                self.mark_price(market, price, out)?;
                self.fire_conditionals(market, out);
            }
            CommandKind::FundingRate { market, rate } => self.funding(market, rate, out)?,
            _ => unreachable!("dispatch sends only account, money and oracle commands here"),
        }
        Ok(())
    }

    /// The market's risk config, after checking the account and market exist.
    fn leveraged(&self, a: AccountId, m: MarketId) -> Result<RiskConfig, RejectReason> {
        self.check_account(a)?;
        self.market(m)?;
        self.risk_of(m).copied().ok_or(RejectReason::NotLeveraged)
    }

    /// Refuses taking `amount` out of a pool if it exceeds the pool's money (unrealised
    /// profit cannot be withdrawn) or would leave equity below initial margin.
    fn check_pool_release(
        &self,
        a: AccountId,
        pool: PoolId,
        amount: i64,
    ) -> Result<(), RejectReason> {
        let amount = i128::from(amount);
        let (equity, im) = self.pool_margin(a, pool, None);
        let short_money = amount - self.pool_money(a, pool);
        let short_margin = amount - (equity - im);
        let shortfall = short_money.max(short_margin);
        if shortfall > 0 {
            return Err(RejectReason::InsufficientMargin {
                shortfall: saturate(shortfall),
            });
        }
        Ok(())
    }

    fn mark_price<S: EventSink>(
        &mut self,
        m: MarketId,
        price: Price,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        self.market(m)?;
        let r = *self.risk_of(m).ok_or(RejectReason::NotLeveraged)?;
        let cfg = self.markets[m.0 as usize].book.cfg;
        if price < cfg.min_price || price > cfg.max_price {
            return Err(RejectReason::MarkOutOfBand);
        }
        let mk = &mut self.markets[m.0 as usize];
        let prev = mk.mark;
        if prev > 0 {
            let moved = i128::from((price.0 - prev).abs()) * 10_000;
            if moved > i128::from(r.max_mark_move_bps) * i128::from(prev) {
                return Err(RejectReason::BadOraclePrint);
            }
            (mk.ewma, mk.scale) = update_volatility(&r, mk.ewma, prev, price.0);
        }
        mk.mark = price.0;
        let scale_bits = mk.scale.to_bits();
        self.ratchet_key_scale(m.0 as usize);
        self.mark_moved(m.0 as usize);
        out.emit(EventKind::MarkUpdated {
            market: m,
            price,
            scale_bits,
        });
        Ok(())
    }

    // ---- queries -------------------------------------------------------------------

    /// One account's position in one market.
    pub fn position(&self, a: AccountId, m: MarketId) -> Option<PositionView> {
        if !self.has_pos(a, m) {
            return None;
        }
        let p = self.pos(a, m);
        let x = self.extra_of(p);
        let leverage = match self.risk_of(m) {
            Some(r) if p.leverage == 0 => r.max_leverage,
            _ => p.leverage,
        };
        Some(PositionView {
            size: p.size,
            cost: p.cost,
            leverage,
            isolated: x.isolated,
            bucket: if x.isolated {
                self.pool_money(a, PoolId::Isolated(m))
            } else {
                x.bucket
            },
            buy_open: x.buy_open,
            sell_open: x.sell_open,
        })
    }

    /// Margin and leverage of one account (O(positions held)).
    pub fn account_risk(&self, a: AccountId) -> Option<AccountRisk> {
        self.accounts.get(a.0 as usize)?;
        let (equity, initial) = self.pool_margin(a, PoolId::Cross, None);
        let mut maintenance = 0;
        let mut notional = 0;
        let mut total_equity = equity;
        for (m, p) in self
            .account_positions(a)
            .filter(|&(m, _)| self.risk_of(m).is_some())
        {
            notional += i128::from(p.size).abs() * i128::from(self.markets[m.0 as usize].mark);
            if self.is_isolated(p) {
                total_equity +=
                    self.extra_of(p).bucket + self.upnl_of(m, p) - self.funding_due(m, p);
            } else {
                maintenance += self.maintenance_of(m, p);
            }
        }
        Some(AccountRisk {
            collateral: self.pool_money(a, PoolId::Cross),
            equity,
            initial,
            maintenance,
            notional,
            leverage: ratio(notional, total_equity),
        })
    }

    /// `(equity, maintenance margin)` of the isolated position in `m`; `None` if it is not
    /// isolated or either id is out of range.
    pub fn isolated_risk(&self, a: AccountId, m: MarketId) -> Option<(i128, i128)> {
        if !self.has_pos(a, m) {
            return None;
        }
        self.is_isolated(self.pos(a, m)).then(|| {
            let (equity, mm, _) = self.pool_maintenance(a, PoolId::Isolated(m));
            (equity, mm)
        })
    }

    /// Open interest, aggregate leverage ratio and mark of one market (O(1)).
    pub fn market_risk(&self, m: MarketId) -> Option<MarketRisk> {
        let mk = self.markets.get(m.0 as usize)?;
        mk.book.cfg.risk?;
        let oi_notional = i128::from(mk.oi) * i128::from(mk.mark);
        Some(MarketRisk {
            mark: mk.mark,
            scale: mk.scale,
            open_interest: mk.oi,
            oi_notional,
            backing: mk.backing,
            leverage: ratio(oi_notional, mk.backing),
        })
    }

    /// Fees collected net of rebates, plus funding dust.
    pub fn fee_ledger(&self) -> i128 {
        self.fee_ledger
    }

    /// Insurance fund cash (see [`Engine::fund`] for its equity).
    pub fn insurance_fund(&self) -> i128 {
        self.insurance
    }

    /// `(size, cost)` of the position the insurance fund took over in a market.
    pub fn fund_position(&self, m: MarketId) -> Option<(i64, i128)> {
        self.markets
            .get(m.0 as usize)
            .map(|mk| (mk.fund_size, mk.fund_cost))
    }

    /// `(equity, maintenance margin)` of an account's cross pool, or of its isolated
    /// position in `m` when `market` is `Some(m)` and that position is isolated.
    pub fn pool_risk(&self, a: AccountId, market: Option<MarketId>) -> Option<(i128, i128)> {
        self.accounts.get(a.0 as usize)?;
        let pool = match market {
            Some(m) if self.position(a, m)?.isolated => PoolId::Isolated(m),
            _ => PoolId::Cross,
        };
        let (e, mm, _) = self.pool_maintenance(a, pool);
        Some((e, mm))
    }

    /// `(equity, initial margin with resting orders)` of the pool `pool_risk` names.
    pub fn pool_initial(&self, a: AccountId, market: Option<MarketId>) -> Option<(i128, i128)> {
        self.accounts.get(a.0 as usize)?;
        let pool = match market {
            Some(m) if self.position(a, m)?.isolated => PoolId::Isolated(m),
            _ => PoolId::Cross,
        };
        Some(self.pool_margin(a, pool, None))
    }

    /// `Σ collateral + Σ buckets − Σ cost + fee ledger + fund cash − Σ fund cost +
    /// funding ledgers − bad debt` (settled money: unsettled funding is owed between
    /// positions, zero in sum): equals net deposits (insurance deposits included)
    /// exactly.
    pub fn money_accounted(&self) -> i128 {
        let collateral: i128 = self.accounts.iter().map(|a| a.collateral).sum();
        // Free slots hold the default state: summing them all adds nothing.
        let positions: i128 = self.slots.pos.iter().map(|p| -p.cost).sum();
        let buckets: i128 = self.slots.ext.iter().map(|x| x.bucket).sum();
        let fund: i128 = self.markets.iter().map(|m| m.fund_cash - m.fund_cost).sum();
        collateral
            + positions
            + buckets
            + self.fee_ledger
            + self.insurance
            + fund
            + self.funding_held()
            - self.bad_debt
    }

    /// Checks the module invariants by brute force.
    pub(super) fn verify_margin(&self) -> Result<(), String> {
        let held = self.markets.iter().filter(|m| m.fund_size != 0).count();
        if held != self.fund_positions as usize {
            return Err(format!(
                "fund holds positions in {held} markets, counted {}",
                self.fund_positions
            ));
        }
        if self.fee_ledger < 0 || self.bad_debt < 0 {
            return Err(format!(
                "fee ledger {} or bad debt {} < 0",
                self.fee_ledger, self.bad_debt
            ));
        }
        for (mi, mk) in self.markets.iter().enumerate() {
            if (mk.fund_size == 0 && mk.fund_cost != 0)
                || (mk.fund_size != 0 && self.liquidation_config(MarketId(mi as u32)).is_none())
                || (mk.fund_cash != 0 && self.fund_of(mi).is_none())
            {
                return Err(format!("market {mi}: fund state out of place"));
            }
        }
        for (mi, mk) in self.markets.iter().enumerate() {
            let m = MarketId(mi as u32);
            let (mut longs, mut shorts, mut backing) =
                (mk.fund_size.max(0), (-mk.fund_size).max(0), 0i128);
            for a in (0..self.cfg.max_accounts).map(AccountId) {
                let p = self.pos(a, m);
                let (mut buys, mut sells) = (0, 0);
                // Open quantities are kept in leveraged markets only.
                let counted = mk.book.cfg.risk.is_some();
                for o in self.level_orders_of(a, m).filter(|_| counted) {
                    match o.side {
                        Side::Buy => buys += o.qty.0,
                        Side::Sell => sells += o.qty.0,
                    }
                }
                let x = self.extra_of(p);
                if (buys, sells) != (x.buy_open, x.sell_open) {
                    return Err(format!(
                        "account {} market {mi}: open {buys}/{sells} vs {}/{}",
                        a.0, x.buy_open, x.sell_open
                    ));
                }
                longs += p.size.max(0);
                shorts += (-p.size).max(0);
                if p.size != 0 {
                    backing += self.pool_cash(a, self.pool_of(a, m));
                }
            }
            if mk.book.cfg.risk.is_some()
                && (longs != shorts || longs != mk.oi || backing != mk.backing)
            {
                return Err(format!(
                    "market {mi}: longs {longs} shorts {shorts} oi {} backing {backing} vs {}",
                    mk.oi, mk.backing
                ));
            }
        }
        Ok(())
    }
}
