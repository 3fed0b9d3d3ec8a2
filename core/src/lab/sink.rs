//! The lab's event sink: what one command did, tallied into the step's figures, the
//! driven markets' totals and the list of accounts liquidated.
//!
//! Invariants: step figures count only the scenario's market (trades, backstops, ADL,
//! marks), except `liquidations`, `stops_triggered` and `bad_debt`, which are per pool or
//! per account and count wherever they happen; market totals count every market; an
//! account enters the liquidated list once.

use super::report::{MarketTally, StepReport};
use crate::event::{Event, EventKind, EventSink};
use crate::types::{AccountId, MarketId};

/// Tallies one command's events.
pub(super) struct StepSink<'a> {
    /// The scenario's market.
    pub m: MarketId,
    /// The step being tallied.
    pub step: &'a mut StepReport,
    /// Last trade price per market id (0: none yet).
    pub last_trades: &'a mut [i64],
    /// Totals per market id.
    pub tallies: &'a mut [MarketTally],
    /// The scenario market's mark as the command moves it.
    pub mark: i64,
    /// The command was refused.
    pub rejected: bool,
    /// The last two `PositionChanged`: `(account, size after)`. An ADL fill follows the
    /// bankrupt's (unless it is the fund) and the counterparty's.
    pub changed: [(AccountId, i64); 2],
    /// The index fell in this step (decides the side when both positions closed).
    pub falling: bool,
    /// The command is a pre-liquidation order: its own trades count as such.
    pub pre_order: bool,
    /// Σ taker fees of the pre-liquidation order's own trades.
    pub taker_fees: i64,
    /// Accounts liquidated so far, and a flag per account id.
    pub liquidated: &'a mut Vec<AccountId>,
    /// `seen[a]`: account `a` is in `liquidated`.
    pub seen: &'a mut [bool],
}

impl StepSink<'_> {
    /// Whether the winners of an ADL fill are short: the counterparty's side, read from
    /// its size after the fill, else from the bankrupt's, else from the index's move.
    fn winners_short(&self, bankrupt: AccountId, counterparty: AccountId) -> bool {
        let after = |a: AccountId| {
            self.changed
                .iter()
                .rev()
                .find(|&&(x, _)| x == a)
                .map_or(0, |&(_, size)| size)
        };
        match (after(counterparty), after(bankrupt)) {
            (c, _) if c != 0 => c < 0,
            (_, b) if b != 0 => b > 0,
            _ => self.falling,
        }
    }

    fn tally(&mut self, m: MarketId) -> Option<&mut MarketTally> {
        self.tallies.get_mut(m.0 as usize)
    }

    fn fill(
        &mut self,
        market: MarketId,
        price: i64,
        qty: i64,
        liquidation: bool,
        fund: bool,
        fee: i64,
    ) {
        if let Some(t) = self.last_trades.get_mut(market.0 as usize) {
            *t = price;
        }
        let notional = i128::from(price) * i128::from(qty);
        if liquidation && !fund {
            if let Some(t) = self.tally(market) {
                t.liquidated_notional += notional;
            }
        }
        if market != self.m {
            return;
        }
        let s = &mut *self.step;
        if self.pre_order && !liquidation {
            s.pre_liquidated_lots += qty;
            s.pre_liquidated_notional += notional;
            self.taker_fees += fee;
        } else if liquidation && !fund {
            s.liquidated_lots += qty;
            s.liquidated_notional += notional;
        }
    }

    fn adl(
        &mut self,
        market: MarketId,
        bankrupt: AccountId,
        counterparty: AccountId,
        price: i64,
        qty: i64,
    ) {
        let notional = i128::from(price) * i128::from(qty);
        if let Some(t) = self.tally(market) {
            t.adl_notional += notional;
        }
        if market != self.m {
            return;
        }
        let short = self.winners_short(bankrupt, counterparty);
        let s = &mut *self.step;
        s.adl_fills += 1;
        s.adl_notional += notional;
        s.adl_winners_short = short;
        // What the winners give up against the mark: positive when the bankrupt pool is
        // below zero (bankruptcy price beyond the mark), negative when it still had
        // equity (the fund could not take it over).
        let edge = if short {
            price - self.mark
        } else {
            self.mark - price
        };
        s.adl_deficit += i128::from(edge) * i128::from(qty);
    }
}

impl EventSink for StepSink<'_> {
    fn emit(&mut self, e: Event) {
        match e.kind {
            EventKind::Rejected(_) => self.rejected = true,
            EventKind::Fill {
                market,
                price,
                qty,
                liquidation,
                taker_account,
                taker_fee,
                ..
            } => self.fill(
                market,
                price.0,
                qty.0,
                liquidation,
                taker_account == AccountId::FUND,
                taker_fee,
            ),
            EventKind::LiquidationStarted { account, .. } => {
                self.step.liquidations += 1;
                if let Some(seen) = self.seen.get_mut(account.0 as usize) {
                    if !*seen {
                        *seen = true;
                        self.liquidated.push(account);
                    }
                }
            }
            EventKind::ConditionalTriggered { .. } => self.step.stops_triggered += 1,
            EventKind::Backstop {
                market, qty, price, ..
            } => {
                let notional = i128::from(price.0) * i128::from(qty.0);
                if let Some(t) = self.tally(market) {
                    t.backstop_notional += notional;
                }
                if market == self.m {
                    self.step.backstop_notional += notional;
                }
            }
            EventKind::MarkUpdated { market, price, .. } if market == self.m => {
                self.mark = price.0;
            }
            EventKind::PositionChanged { account, size, .. } => {
                self.changed = [self.changed[1], (account, size)];
            }
            EventKind::AdlFill {
                market,
                account,
                counterparty,
                qty,
                price,
            } => self.adl(market, account, counterparty, price.0, qty.0),
            EventKind::BadDebt { amount, .. } => self.step.bad_debt += amount,
            _ => {}
        }
    }
}
