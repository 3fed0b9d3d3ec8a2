//! Leverage and open-interest history: one sample per mark update, kept in a bounded
//! ring (the oldest sample is dropped when it is full).
//!
//! Invariants: at most `capacity` samples, in the order recorded; a sample reads the
//! engine without changing it, in O(heatmap buckets + book levels within 5%); the
//! distance to cascade, which runs simulations, is recorded only when the caller passes
//! it (see [`History::distance_due`]).

use super::exposure::liquidatable_within;
use crate::engine::Engine;
use crate::risk::Rate;
use crate::types::MarketId;
use std::collections::VecDeque;

/// One sample of a market's leverage state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Sequence number of the mark update sampled.
    pub seq: u64,
    /// Mark price.
    pub mark: i64,
    /// Aggregate leverage ratio (open interest notional / backing).
    pub leverage: Option<Rate>,
    /// Open interest, lots (one side).
    pub open_interest: i64,
    /// Long lots in the trigger index (single-market pools).
    pub long_lots: i64,
    /// Short lots in the trigger index (single-market pools).
    pub short_lots: i64,
    /// Long notional whose trigger lies within 5% below the mark (upper bound).
    pub long_within_5pct: i128,
    /// Short notional whose trigger lies within 5% above the mark (upper bound).
    pub short_within_5pct: i128,
    /// Equity of the market's insurance fund.
    pub fund_equity: i128,
    /// Distance to cascade (bps), when computed for this sample.
    pub distance_bps: Option<u32>,
}

impl Sample {
    /// Long/short skew of the indexed positions, bps: `(L − S) / (L + S) × 10^4`
    /// (rounded towards zero; 0 when both are 0).
    pub fn skew_bps(&self) -> i64 {
        let total = i128::from(self.long_lots) + i128::from(self.short_lots);
        if total == 0 {
            return 0;
        }
        ((i128::from(self.long_lots) - i128::from(self.short_lots)) * 10_000 / total) as i64
    }
}

/// A bounded ring of samples of one market.
#[derive(Clone, Debug)]
pub struct History {
    market: MarketId,
    capacity: usize,
    distance_every: u64,
    recorded: u64,
    samples: VecDeque<Sample>,
}

impl History {
    /// A history of market `m` keeping the last `capacity` samples (≥ 1), expecting the
    /// distance to cascade every `distance_every` samples (0: never).
    pub fn new(m: MarketId, capacity: usize, distance_every: u64) -> History {
        let capacity = capacity.max(1);
        History {
            market: m,
            capacity,
            distance_every,
            recorded: 0,
            samples: VecDeque::with_capacity(capacity),
        }
    }

    /// True if the next sample should carry the distance to cascade.
    pub fn distance_due(&self) -> bool {
        self.distance_every > 0 && self.recorded % self.distance_every == 0
    }

    /// Samples the market now (after the mark update `seq`); `distance` is the distance
    /// to cascade if the caller computed it. Nothing is recorded without a mark.
    pub fn record(&mut self, engine: &Engine, seq: u64, distance: Option<u32>) {
        let m = self.market;
        let Some(risk) = engine.market_risk(m).filter(|r| r.mark > 0) else {
            return;
        };
        let (mut long_lots, mut short_lots) = (0, 0);
        engine.liquidation_heatmap(m, |_, _, l, s| {
            long_lots += l;
            short_lots += s;
        });
        let within = liquidatable_within(engine, m, &[500]);
        let fund = engine.market_fund(m).unwrap_or_else(|| engine.fund());
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            seq,
            mark: risk.mark,
            leverage: risk.leverage,
            open_interest: risk.open_interest,
            long_lots,
            short_lots,
            long_within_5pct: within.first().map_or(0, |e| e.long_notional),
            short_within_5pct: within.first().map_or(0, |e| e.short_notional),
            fund_equity: fund.equity,
            distance_bps: distance,
        });
        self.recorded += 1;
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = &Sample> + '_ {
        self.samples.iter()
    }

    /// Samples recorded since creation (kept or dropped).
    pub fn recorded(&self) -> u64 {
        self.recorded
    }
}
