//! The insurance fund as a marked-to-market participant: its equity and haircut, the
//! capacity rule of the backstop, its own deleveraging when its equity is negative,
//! and the unwind orders through which it closes what it took over.
//!
//! Invariants: per market, account positions plus the fund's position sum to zero;
//! `equity = cash + Σ (size × mark − cost)` over the fund's positions; the backstop
//! never leaves `equity < haircut` unless the fund only closes its own opposite
//! position; after every command, the fund's equity is negative only if no account
//! held a position opposite to the fund's when it was deleveraged.

use super::{Engine, Out};
use crate::event::{EventKind, EventSink};
use crate::risk::mul_rate_up;

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
    /// Equity of the fund: cash plus its positions at their marks.
    pub(super) fn fund_equity(&self) -> i128 {
        let upnl: i128 = self
            .markets
            .iter()
            .filter(|mk| mk.fund_size != 0)
            .map(|mk| i128::from(mk.fund_size) * i128::from(mk.mark) - mk.fund_cost)
            .sum();
        self.insurance + upnl
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

    /// The fund's total haircut.
    pub(super) fn fund_haircut(&self) -> i128 {
        (0..self.markets.len())
            .filter(|&m| self.markets[m].fund_size != 0)
            .map(|m| self.fund_haircut_at(m, self.markets[m].fund_size))
            .sum()
    }

    /// Moves the fund's cash by `delta` and reports cash, change and equity.
    pub(super) fn change_fund<S: EventSink>(&mut self, delta: i128, out: &mut Out<S>) {
        self.insurance += delta;
        out.emit(EventKind::InsuranceFund {
            balance: self.insurance,
            change: delta,
            equity: self.fund_equity(),
        });
    }

    // ---- queries -------------------------------------------------------------------

    /// The insurance fund: cash, equity, haircut and total position.
    pub fn fund(&self) -> FundView {
        FundView {
            cash: self.insurance,
            equity: self.fund_equity(),
            haircut: self.fund_haircut(),
            position_lots: self
                .markets
                .iter()
                .map(|mk| i128::from(mk.fund_size).abs())
                .sum(),
        }
    }

    /// Outstanding bad debt: written off, not socialised on the fee ledger.
    pub fn bad_debt(&self) -> i128 {
        self.bad_debt
    }
}
