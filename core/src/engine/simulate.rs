//! What-if: a hypothetical mark path applied to a copy of the live state.

use super::Engine;
use crate::command::{Command, CommandKind};
use crate::event::{Event, EventKind, EventSink};
use crate::types::{AccountId, MarketId, Price, Side};

/// What a hypothetical mark path would do, run on a copy of the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CascadeReport {
    /// Marks applied (a refused mark, e.g. a move beyond the oracle guard, stops the path).
    pub marks_applied: usize,
    /// Pools liquidated.
    pub liquidations: u64,
    /// Lots traded by liquidation orders against the book.
    pub liquidated_lots: i64,
    /// Lots taken over by the insurance fund.
    pub backstop_lots: i64,
    /// Auto-deleveraging fills.
    pub adl_fills: u64,
    /// Equity of the market's insurance fund (its own, or the shared one) before the
    /// path: cash plus its positions at mark.
    pub fund_start: i128,
    /// Lowest insurance fund equity along the path: after every fund event and after
    /// every mark.
    pub fund_low: i128,
    /// Insurance fund equity after the path.
    pub fund_end: i128,
    /// Lots the fund's unwind orders traded.
    pub unwound_lots: i64,
    /// Bad debt written off along the path (socialised or not).
    pub bad_debt: i128,
    /// The fund watched: the market's own (`Some(m)`), or the shared one (`None`).
    pub fund: Option<MarketId>,
    /// Best bid and ask before the path.
    pub top_before: (Option<Price>, Option<Price>),
    /// Best bid and ask after the path: the price impact of the liquidation orders.
    pub top_after: (Option<Price>, Option<Price>),
}

impl EventSink for CascadeReport {
    fn emit(&mut self, e: Event) {
        match e.kind {
            EventKind::LiquidationStarted { .. } => self.liquidations += 1,
            EventKind::Fill {
                liquidation: true,
                qty,
                taker_account,
                ..
            } => {
                if taker_account == AccountId::FUND {
                    self.unwound_lots += qty.0;
                } else {
                    self.liquidated_lots += qty.0;
                }
            }
            EventKind::BadDebt { amount, .. } => self.bad_debt += amount,
            EventKind::Backstop { qty, .. } => self.backstop_lots += qty.0,
            EventKind::AdlFill { .. } => self.adl_fills += 1,
            EventKind::InsuranceFund { fund, equity, .. } if fund == self.fund => {
                self.fund_low = self.fund_low.min(equity);
            }
            _ => {}
        }
    }
}

impl Engine {
    /// Applies `path` as mark updates of market `m` to a copy of this engine (allocates
    /// the copy; the engine itself is untouched) and reports the cascade it causes.
    pub fn simulate_marks(&self, m: MarketId, path: &[Price]) -> CascadeReport {
        let mut copy = self.clone();
        let top = |e: &Engine| {
            (
                e.best(m, Side::Buy).map(|b| b.0),
                e.best(m, Side::Sell).map(|b| b.0),
            )
        };
        let fund = self.fund_of(m.0 as usize);
        let mut report = CascadeReport {
            fund,
            fund_start: self.fund_equity(fund),
            fund_low: self.fund_equity(fund),
            top_before: top(self),
            ..CascadeReport::default()
        };
        for &price in path {
            let mut events = EventCheck::default();
            copy.apply(
                &Command {
                    seq: 0,
                    ts_ns: 0,
                    kind: CommandKind::MarkPrice { market: m, price },
                },
                &mut Tee(&mut report, &mut events),
            );
            if events.rejected {
                break;
            }
            report.marks_applied += 1;
            report.fund_low = report.fund_low.min(copy.fund_equity(fund));
        }
        report.fund_end = copy.fund_equity(fund);
        report.top_after = top(&copy);
        report
    }
}

/// Notes whether the command was refused.
#[derive(Default)]
struct EventCheck {
    rejected: bool,
}

impl EventSink for EventCheck {
    fn emit(&mut self, e: Event) {
        self.rejected |= matches!(e.kind, EventKind::Rejected(_));
    }
}

/// Sends each event to two sinks.
struct Tee<'a, A, B>(&'a mut A, &'a mut B);

impl<A: EventSink, B: EventSink> EventSink for Tee<'_, A, B> {
    fn emit(&mut self, e: Event) {
        self.0.emit(e);
        self.1.emit(e);
    }
}
