//! The figures implied by the trigger index alone (no simulation): how much could be
//! liquidated within a move of the mark, and what rests in the book to absorb it.
//!
//! Invariants: read-only, O(heatmap buckets + book levels within reach); positions are
//! counted by their bucket in the liquidation heatmap, and a bucket counts when any part
//! of it lies within reach, so the figures are upper bounds at bucket granularity.
//! Multi-market cross positions are not in the heatmap (see
//! [`Engine::liquidation_heatmap`]).

use crate::engine::Engine;
use crate::types::{MarketId, Side};

/// What a move of `move_bps` each way from the mark would reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// The move, bps of the mark.
    pub move_bps: u32,
    /// Long lots whose trigger lies within the move down.
    pub long_lots: i64,
    /// Their notional at their bucket's upper price (atoms).
    pub long_notional: i128,
    /// Short lots whose trigger lies within the move up.
    pub short_lots: i64,
    /// Their notional at their bucket's lower price (atoms).
    pub short_notional: i128,
    /// Lots of sell stops that fire within the move down.
    pub sell_stop_lots: i64,
    /// Lots of buy stops that fire within the move up.
    pub buy_stop_lots: i64,
    /// Lots bid within the move down (what the longs' liquidations sell into).
    pub bid_lots: i64,
    /// Lots offered within the move up.
    pub ask_lots: i64,
}

/// One [`Exposure`] per move of `moves_bps`; empty if the market has no mark.
pub fn liquidatable_within(engine: &Engine, m: MarketId, moves_bps: &[u32]) -> Vec<Exposure> {
    let Some(mark) = engine.market_risk(m).map(|r| r.mark).filter(|&p| p > 0) else {
        return Vec::new();
    };
    moves_bps
        .iter()
        .map(|&x| {
            let reach =
                (i128::from(mark) * i128::from(x) / 10_000).min(i128::from(i64::MAX)) as i64;
            let (down, up) = (mark.saturating_sub(reach), mark.saturating_add(reach));
            let mut e = Exposure {
                move_bps: x,
                ..Exposure::default()
            };
            engine.liquidation_heatmap(m, |lo, hi, long, short| {
                if hi.0 >= down && lo.0 <= mark {
                    e.long_lots += long;
                    e.long_notional += i128::from(long) * i128::from(hi.0);
                }
                if lo.0 <= up && hi.0 >= mark {
                    e.short_lots += short;
                    e.short_notional += i128::from(short) * i128::from(lo.0);
                }
            });
            engine.stop_heatmap(m, |lo, hi, buy, sell| {
                if hi.0 >= down && lo.0 <= mark {
                    e.sell_stop_lots += sell;
                }
                if lo.0 <= up && hi.0 >= mark {
                    e.buy_stop_lots += buy;
                }
            });
            engine.depth(m, Side::Buy, usize::MAX, |p, q, _| {
                if p.0 >= down {
                    e.bid_lots += q.0;
                }
            });
            engine.depth(m, Side::Sell, usize::MAX, |p, q, _| {
                if p.0 <= up {
                    e.ask_lots += q.0;
                }
            });
            e
        })
        .collect()
}
