//! The insurance fund as a marked-to-market participant: its equity and haircut, the
//! capacity rule of the backstop, its own deleveraging when its equity is negative,
//! and the unwind orders through which it closes what it took over.
//!
//! Invariants: per market, account positions plus the fund's position sum to zero; a
//! fund's `equity = cash + Σ (size × mark − cost)` over the markets it serves; a backstop
//! takeover never leaves `equity < haircut`. Beyond capacity the fund takes lots only
//! when the round's ADL ranking has no holder left to give them (it closes its own
//! opposite position, or takes what holders who appeared later in the round could have
//! taken). After every command, a fund's equity is negative only if no ranked account
//! could take its position, or the market is halted.

use super::liquidation::{band_of, bankruptcy_price, to_tick};
use super::margin::{saturate, trade, PoolId};
use super::{Engine, Out, TakerKind};
use crate::event::{EventKind, EventSink};
use crate::risk::{mul_rate_down, mul_rate_up};
use crate::types::{AccountId, MarketId, OrderId, Price, Qty, Side};

/// The insurance fund's figures (O(markets) to compute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FundView {
    /// Cash: deposits, fees, backstop edges, funding and realised PnL of its trades.
    pub cash: i128,
    /// Cash plus every fund position at its mark minus its cost.
    pub equity: i128,
    /// `Σ ceil(|size| × mark × fund_haircut)` over the fund's positions.
    pub haircut: i128,
    /// Σ |size| over the fund's positions, lots (markets may differ in lot size).
    pub position_lots: i128,
}

impl Engine {
    /// The fund of market `m`: `Some(m)` when it has its own
    /// (`LiquidationConfig::isolated_fund`), `None` for the shared one.
    pub(super) fn fund_of(&self, m: usize) -> Option<MarketId> {
        self.markets[m]
            .book
            .cfg
            .risk
            .and_then(|r| r.liquidation)
            .is_some_and(|l| l.isolated_fund)
            .then_some(MarketId(m as u32))
    }

    /// A fund's cash.
    pub(super) fn fund_cash(&self, fund: Option<MarketId>) -> i128 {
        fund.map_or(self.insurance, |m| self.markets[m.0 as usize].fund_cash)
    }

    /// The markets whose positions belong to `fund`.
    fn fund_markets(&self, fund: Option<MarketId>) -> std::ops::Range<usize> {
        fund.map_or(0..self.markets.len(), |m| m.0 as usize..m.0 as usize + 1)
    }

    /// Equity of a fund: cash plus its positions at their marks (O(markets) for the
    /// shared fund, O(1) for a market's own).
    pub(super) fn fund_equity(&self, fund: Option<MarketId>) -> i128 {
        let upnl: i128 = self
            .fund_markets(fund)
            .filter(|&m| self.markets[m].fund_size != 0 && self.fund_of(m) == fund)
            .map(|m| {
                let mk = &self.markets[m];
                i128::from(mk.fund_size) * i128::from(mk.mark) - mk.fund_cost
            })
            .sum();
        self.fund_cash(fund) + upnl
    }

    /// Haircut of the fund's position of `size` lots in market `m` at its mark.
    pub(super) fn fund_haircut_at(&self, m: usize, size: i64) -> i128 {
        let mk = &self.markets[m];
        let h = mk
            .book
            .cfg
            .risk
            .and_then(|r| r.liquidation)
            .map_or(crate::risk::Rate::ZERO, |l| l.fund_haircut);
        mul_rate_up(i128::from(size).abs() * i128::from(mk.mark), h)
    }

    /// A fund's total haircut.
    pub(super) fn fund_haircut(&self, fund: Option<MarketId>) -> i128 {
        self.fund_markets(fund)
            .filter(|&m| self.markets[m].fund_size != 0 && self.fund_of(m) == fund)
            .map(|m| self.fund_haircut_at(m, self.markets[m].fund_size))
            .sum()
    }

    /// Moves a fund's cash by `delta` and reports cash, change and equity.
    pub(super) fn change_fund<S: EventSink>(
        &mut self,
        fund: Option<MarketId>,
        delta: i128,
        out: &mut Out<S>,
    ) {
        match fund {
            None => self.insurance += delta,
            Some(m) => self.markets[m.0 as usize].fund_cash += delta,
        }
        out.emit(EventKind::InsuranceFund {
            fund,
            balance: self.fund_cash(fund),
            change: delta,
            equity: self.fund_equity(fund),
        });
    }

    /// Trades `q` lots on `side` at `price` into the fund's position in `m`; returns the
    /// realised PnL (its cash is moved by the caller). Keeps open interest and the count
    /// of markets where the fund holds a position.
    pub(super) fn fund_book(&mut self, m: MarketId, side: Side, q: i64, price: i64) -> i128 {
        let mk = &mut self.markets[m.0 as usize];
        let old = mk.fund_size;
        let realised = trade(&mut mk.fund_size, &mut mk.fund_cost, side, q, price);
        mk.oi += mk.fund_size.max(0) - old.max(0);
        let now = mk.fund_size;
        match (old == 0, now == 0) {
            (true, false) => self.fund_positions += 1,
            (false, true) => self.fund_positions -= 1,
            _ => {}
        }
        realised
    }

    /// Most lots (≤ `lots`) the fund can take over on `side` at the bankruptcy price
    /// `bk`: the largest `c` with `equity(c) − haircut(c) ≥ 0` after the takeover; 0 if
    /// none. Taking over at `bk` booked at the mark moves equity by exactly the edge
    /// `c × (mark − bk)` (buying), so `g(c) = equity + edge(c) − haircut(c)`; the haircut
    /// is monotone in `c` on each side of the point where the fund's position crosses
    /// zero, and so is `g` (the edge per lot is an integer), so each piece is searched by
    /// bisection.
    pub(super) fn fund_capacity(&self, m: MarketId, side: Side, lots: i64, bk: i64) -> i64 {
        let mi = m.0 as usize;
        let (size, mark) = (self.markets[mi].fund_size, self.markets[mi].mark);
        let dir: i64 = if side == Side::Buy { 1 } else { -1 };
        let edge = if side == Side::Buy {
            i128::from(mark) - i128::from(bk)
        } else {
            i128::from(bk) - i128::from(mark)
        };
        let fund = self.fund_of(mi);
        let base =
            self.fund_equity(fund) - self.fund_haircut(fund) + self.fund_haircut_at(mi, size);
        let ok =
            |c: i64| base + i128::from(c) * edge - self.fund_haircut_at(mi, size + dir * c) >= 0;
        if ok(lots) {
            return lots;
        }
        let turn = if size.signum() == -dir {
            size.abs().min(lots)
        } else {
            0
        };
        // Later piece first: the largest feasible `c` wins.
        for (lo, hi) in [(turn, lots), (0, turn)] {
            if hi <= lo {
                continue;
            }
            if ok(hi) {
                return hi;
            }
            if !ok(lo) {
                continue;
            }
            let (mut lo, mut hi) = (lo, hi);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if ok(mid) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return lo;
        }
        0
    }

    /// A flat pool left with negative money `deficit`: the fund pays what its capacity
    /// allows, the rest is bad debt, socialised on the fee ledger as far as it holds.
    pub(super) fn cover_deficit<S: EventSink>(
        &mut self,
        a: AccountId,
        pool: PoolId,
        (fund, deficit): (Option<MarketId>, i128),
        out: &mut Out<S>,
    ) {
        let capacity = (self.fund_equity(fund) - self.fund_haircut(fund)).max(0);
        let paid = deficit.min(capacity);
        if paid > 0 {
            self.credit(a, pool, paid);
            self.change_fund(fund, -paid, out);
        }
        let written_off = deficit - paid;
        if written_off > 0 {
            self.credit(a, pool, written_off);
            let socialised = written_off.min(self.fee_ledger.max(0));
            self.fee_ledger -= socialised;
            self.bad_debt += written_off - socialised;
            out.emit(EventKind::BadDebt {
                account: a,
                market: match pool {
                    PoolId::Cross => None,
                    PoolId::Isolated(m) => Some(m),
                },
                amount: written_off,
                socialised,
            });
        }
    }

    /// The deficits of the round, in order (ascending account, cross before isolated):
    /// each flat pool with negative money gets the deficit step.
    pub(super) fn cover_deficits<S: EventSink>(&mut self, out: &mut Out<S>) {
        self.deficits
            .sort_unstable_by_key(|&(a, pool)| (a, super::liquidation::pool_rank(pool)));
        for k in 0..self.deficits.len() {
            let (a, pool) = self.deficits[k];
            let a = AccountId(a);
            let money = self.pool_money(a, pool);
            if money < 0 && self.pool_flat(a, pool) {
                self.cover_deficit(a, pool, (None, -money), out);
            }
        }
        self.deficits.clear();
    }

    /// True if the pool holds no position in any leveraged market.
    pub(super) fn pool_flat(&self, a: AccountId, pool: PoolId) -> bool {
        !self
            .pool_positions(a, pool)
            .any(|(m, p)| self.risk_of(m).is_some() && p.size != 0)
    }

    /// While the fund's equity is negative, deleverages its positions whole at its
    /// bankruptcy price against the opposite holders (ascending market id, markets that
    /// liquidate now). Returns whether anything traded.
    pub(super) fn fund_solvency<S: EventSink>(&mut self, out: &mut Out<S>) -> bool {
        let mut traded = false;
        // The shared fund's equity is O(markets): once, and again after a trade.
        let mut shared = self.fund_equity(None);
        for mi in 0..self.markets.len() {
            let m = MarketId(mi as u32);
            let size = self.markets[mi].fund_size;
            if size == 0 || !self.liquidates_now(m) {
                continue;
            }
            let fund = self.fund_of(mi);
            let equity = if fund.is_some() {
                self.fund_equity(fund)
            } else {
                shared
            };
            if equity >= 0 {
                continue;
            }
            let u = size.abs();
            let bk = bankruptcy_price(equity, size, self.markets[mi].mark);
            let close = if size > 0 { Side::Sell } else { Side::Buy };
            self.clear_rankings(); // a fresh ranking
            self.fund_cash_delta = 0;
            let left = self.deleverage(AccountId::FUND, m, close, u, bk, out);
            if left < u {
                traded = true;
                let delta = self.fund_cash_delta;
                self.change_fund(fund, delta, out);
                if fund.is_none() {
                    shared = self.fund_equity(None);
                }
            }
        }
        traded
    }

    /// The fund's unwind orders, one per market that liquidates now and where it holds a
    /// position: an IOC at the band price for `unwind_rate` of the visible opposite depth
    /// within the band (at least one lot). Returns whether anything traded.
    pub(super) fn unwind<S: EventSink>(&mut self, out: &mut Out<S>) -> bool {
        let mut traded = false;
        for mi in 0..self.markets.len() {
            let m = MarketId(mi as u32);
            let size = self.markets[mi].fund_size;
            let Some(cfg) = self.liquidation_config(m) else {
                continue;
            };
            if size == 0 || cfg.unwind_rate <= 0 || self.markets[mi].halted {
                continue;
            }
            let side = if size > 0 { Side::Sell } else { Side::Buy };
            let limit = self.unwind_limit(mi, side, cfg.band_bps);
            let visible = self.visible_depth(mi, side, limit);
            if visible == 0 {
                continue;
            }
            let share = mul_rate_down(i128::from(visible), cfg.unwind_rate).max(1);
            let q = share.min(i128::from(size.abs())) as i64;
            out.emit(EventKind::FundOrder {
                order_id: OrderId(self.next_order_id),
                market: m,
                side,
                price: Price(limit),
                qty: Qty(q),
            });
            self.fund_cash_delta = 0;
            self.forced_ioc(m, AccountId::FUND, TakerKind::Fund, side, (limit, q), out);
            if self.markets[mi].fund_size != size {
                traded = true;
                let delta = self.fund_cash_delta;
                self.change_fund(self.fund_of(mi), delta, out);
            }
        }
        traded
    }

    /// The fund's side of a book fill of its unwind order: its position trades at the
    /// fill price, its cash (accumulated in `fund_cash_delta`) receives the realised PnL
    /// less the taker fee, which goes to the fee ledger.
    pub(super) fn fund_fill(&mut self, m: MarketId, side: Side, price: Price, q: i64, fee: i64) {
        let realised = self.fund_book(m, side, q, price.0);
        self.fund_cash_delta += realised - i128::from(fee);
        self.fee_ledger += i128::from(fee);
    }

    /// Limit of an unwind order: `mark ∓ ceil(mark × band_bps / 10,000)` rounded to a
    /// tick toward the mark, clamped into the market's price band.
    fn unwind_limit(&self, mi: usize, side: Side, band_bps: u32) -> i64 {
        let mk = &self.markets[mi];
        let cfg = &mk.book.cfg;
        let band = saturate(band_of(mk.mark, band_bps));
        match side {
            Side::Sell => to_tick(mk.mark - band, cfg.tick, true).max(cfg.min_price.0),
            Side::Buy => to_tick(mk.mark + band, cfg.tick, false).min(cfg.max_price.0),
        }
    }

    /// Resting quantity on the side opposite `side` at prices that cross `limit`.
    fn visible_depth(&self, mi: usize, side: Side, limit: i64) -> i64 {
        let book = &self.markets[mi].book;
        let maker = side.opposite();
        let mut total: i64 = 0;
        let mut cur = book.best(maker);
        while let Some(idx) = cur {
            if !side.crosses(Price(limit), book.cfg.price_of(idx)) {
                break;
            }
            total = total.saturating_add(book.level(idx).qty);
            cur = book.next_worse(maker, idx);
        }
        total
    }

    // ---- queries -------------------------------------------------------------------

    /// The shared insurance fund: cash, equity, haircut and total position (over the
    /// markets without a fund of their own).
    pub fn fund(&self) -> FundView {
        self.fund_view(None)
    }

    /// Market `m`'s own insurance fund, if it has one (`LiquidationConfig::isolated_fund`).
    pub fn market_fund(&self, m: MarketId) -> Option<FundView> {
        (m.0 < self.markets.len() as u32 && self.fund_of(m.0 as usize) == Some(m))
            .then(|| self.fund_view(Some(m)))
    }

    fn fund_view(&self, fund: Option<MarketId>) -> FundView {
        FundView {
            cash: self.fund_cash(fund),
            equity: self.fund_equity(fund),
            haircut: self.fund_haircut(fund),
            position_lots: self
                .fund_markets(fund)
                .filter(|&m| self.fund_of(m) == fund)
                .map(|m| i128::from(self.markets[m].fund_size).abs())
                .sum(),
        }
    }

    /// Outstanding bad debt: written off, not socialised on the fee ledger.
    pub fn bad_debt(&self) -> i128 {
        self.bad_debt
    }
}
