//! Distance to cascade: how far the index must move before the market's own response
//! carries the mark at least twice as far.
//!
//! Invariants: every point of a curve is one independent lab run from the same engine
//! state (the engine is only read); a shock of `x` bps moves the index linearly from the
//! start mark by `x` bps over `steps` steps, then holds it for `settle` steps so the
//! feedback can play out. Amplification is the mark's furthest adverse move over the
//! index's move, both from the start mark.

use super::run::run;
use super::scenario::{Scenario, ScenarioError};
use crate::engine::Engine;
use crate::risk::Rate;
use crate::types::Price;

/// Which way the index moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Down: adverse for longs.
    Down,
    /// Up: adverse for shorts.
    Up,
}

/// The shape of the shocks a curve is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shock {
    /// Direction of the index move.
    pub direction: Direction,
    /// Steps over which the index moves (≥ 1).
    pub steps: u32,
    /// Steps the index then holds at its extreme.
    pub settle: u32,
}

/// One point of an amplification curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmplificationPoint {
    /// The index move, bps of the start mark.
    pub move_bps: u32,
    /// The mark's furthest adverse move, price units.
    pub mark_move: i64,
    /// The index move, price units.
    pub index_move: i64,
    /// `mark_move / index_move` (rounded down).
    pub amplification: Rate,
    /// Liquidated notional (atoms).
    pub liquidated_notional: i128,
    /// ADL notional (atoms).
    pub adl_notional: i128,
    /// Bad debt (atoms).
    pub bad_debt: i128,
}

/// The index path of a `move_bps` shock from `start` (a fall stops at 1, a rise at
/// `i64::MAX`).
pub fn shock_path(start: i64, move_bps: u32, shock: Shock) -> Vec<Price> {
    let sign = match shock.direction {
        Direction::Down => -1,
        Direction::Up => 1,
    };
    // A fall stops at a price of 1: a move of 100% or more is read as to 1.
    let total = (i128::from(start) * i128::from(move_bps) / 10_000).min(match shock.direction {
        Direction::Down => i128::from(start - 1).max(0),
        Direction::Up => i128::from(i64::MAX - start),
    });
    let steps = i128::from(shock.steps.max(1));
    (1..=steps)
        .map(|k| start + sign * (total * k / steps) as i64)
        .chain((0..shock.settle).map(move |_| start + sign * total as i64))
        .map(Price)
        .collect()
}

/// Runs one shock of `move_bps` with the template's rule, refill and rounds (its index
/// path is ignored).
pub fn amplification_at(
    engine: &Engine,
    template: &Scenario,
    shock: Shock,
    move_bps: u32,
) -> Result<AmplificationPoint, ScenarioError> {
    let start = engine
        .market_risk(template.market)
        .map(|r| r.mark)
        .filter(|&p| p > 0)
        .ok_or(ScenarioError::NoMark)?;
    let path = shock_path(start, move_bps, shock);
    let report = run(
        engine,
        &Scenario {
            index: &path,
            ..*template
        },
    )?;
    let (lo, hi) = report.mark_range();
    let (mark_move, index_move) = match shock.direction {
        Direction::Down => (start - lo, start - path.last().map_or(start, |p| p.0)),
        Direction::Up => (hi - start, path.last().map_or(start, |p| p.0) - start),
    };
    let amplification = if index_move > 0 {
        let bits = (i128::from(mark_move) << 32) / i128::from(index_move);
        Rate::from_bits(bits.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    } else {
        Rate::ZERO
    };
    Ok(AmplificationPoint {
        move_bps,
        mark_move,
        index_move,
        amplification,
        liquidated_notional: report.liquidated_notional(),
        adl_notional: report.adl_notional(),
        bad_debt: report.bad_debt(),
    })
}

/// The amplification curve at each move of `moves_bps`.
pub fn amplification_curve(
    engine: &Engine,
    template: &Scenario,
    shock: Shock,
    moves_bps: &[u32],
) -> Result<Vec<AmplificationPoint>, ScenarioError> {
    moves_bps
        .iter()
        .map(|&x| amplification_at(engine, template, shock, x))
        .collect()
}

/// The smallest index move (bps, to within `resolution_bps`) whose cascade amplifies it
/// at least twofold, searched up to `max_bps`; `None` if no move up to there does.
///
/// Search: moves double from `resolution_bps` until one amplifies ≥ 2, then the bracket
/// is bisected. Amplification need not be monotone in the move, so this finds *a*
/// threshold inside the first bracket that crosses: a smaller isolated move that also
/// amplifies (a pocket of triggers just past the start) could hide below the first
/// doubling; the curve shows it.
pub fn distance_to_cascade(
    engine: &Engine,
    template: &Scenario,
    shock: Shock,
    max_bps: u32,
    resolution_bps: u32,
) -> Result<Option<u32>, ScenarioError> {
    let two = Rate::from_num(2);
    let amplifies = |x: u32| -> Result<bool, ScenarioError> {
        Ok(amplification_at(engine, template, shock, x)?.amplification >= two)
    };
    let step = resolution_bps.max(1);
    let (mut below, mut x) = (0u32, step);
    loop {
        if amplifies(x.min(max_bps))? {
            break;
        }
        if x >= max_bps {
            return Ok(None);
        }
        below = x;
        x = x.saturating_mul(2);
    }
    let mut above = x.min(max_bps);
    while above - below > step {
        let mid = below + (above - below) / 2;
        if amplifies(mid)? {
            above = mid;
        } else {
            below = mid;
        }
    }
    Ok(Some(above))
}
