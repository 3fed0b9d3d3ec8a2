//! ADL policies compared in one accounting: who pays a deficit, how much of their
//! profit is taken, and how much notional is closed.
//!
//! The accounting is Chitra's (arXiv 2512.01112): every winner holds a positive
//! unrealised PnL `w_i` at the mark; a policy assigns each a haircut `x_i` (atoms of
//! profit taken) and a number of lots closed `c_i`; closing `c` of a winner's `s` lots
//! forfeits the profit of those lots, `w_i · c / s`. The overshoot is `Σ x_i − D`: profit
//! taken beyond the deficit `D` that needed covering.
//!
//! - [`AdlPolicy::Queue`] (BitMEX, the engine's `AdlMode::Queue`): rank by PnL% ×
//!   leverage (`w/e · n/e`), highest first, ties by account; close whole positions until
//!   the profit taken covers the deficit. Overshoots by up to one position's profit.
//! - [`AdlPolicy::ProRata`] (the engine's `AdlMode::ProRata`): every winner closes the
//!   same fraction of its position, rounded up to whole lots, the smallest fraction
//!   that covers the deficit. Overshoots by lot rounding only.
//! - [`AdlPolicy::CappedProRata`] (Chitra's rule): haircut `x_i = min(η, β)·w_i` with
//!   `η` chosen so that `Σ x_i = D` exactly; no position is closed. The atoms lost to
//!   rounding are assigned by largest remainder, ties by account.
//! - [`AdlPolicy::LeverageDraining`] (Campbell, Hey, Moallemi, Nutz, arXiv 2603.15963):
//!   close lots of the most leveraged winners first, water-filling every leverage above
//!   a level `λ` down to `λ`, with the highest `λ` that covers the deficit.
//!
//! Invariants (tested as properties): `0 ≤ x_i ≤ w_i` and `0 ≤ c_i ≤ s_i`; only the
//! winners listed are touched, and a listed account with `w_i ≤ 0` or `s_i = 0` never
//! is; `Σ x_i ≥ min(D, Σ w_i)`; the capped pro-rata rule takes exactly `min(D, β·Σ w)`;
//! `uncovered = max(0, D − Σ x_i)`. Integer arithmetic throughout.

use crate::risk::Rate;
use crate::types::AccountId;

/// A holder of a profitable position opposite the bankrupt one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Winner {
    /// Account.
    pub account: AccountId,
    /// Unrealised PnL at the mark (atoms); only positive values can be taken from.
    pub pnl: i128,
    /// Equity backing the position (atoms).
    pub equity: i128,
    /// Position notional at the mark (atoms).
    pub notional: i128,
    /// Position size, lots (absolute).
    pub lots: i64,
}

/// How a deficit is spread over winners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdlPolicy {
    /// Whole positions in rank order (PnL% × leverage).
    Queue,
    /// The same fraction of every winner's position.
    ProRata,
    /// A haircut on profits, `min(η, cap)` of each, positions untouched.
    CappedProRata {
        /// Largest share of any winner's profit that may be taken, bps (10,000: all).
        cap_bps: u32,
    },
    /// The most leveraged first, water-filling leverage down.
    LeverageDraining,
}

/// What a policy took from one winner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Take {
    /// Account.
    pub account: AccountId,
    /// Profit taken (atoms).
    pub haircut: i128,
    /// Lots closed.
    pub lots: i64,
}

/// A policy's allocation of one deficit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// One entry per winner touched, in the order of the input.
    pub takes: Vec<Take>,
    /// Σ haircuts.
    pub taken: i128,
    /// `taken − deficit` when positive: profit taken beyond the need.
    pub overshoot: i128,
    /// `deficit − taken` when positive: what the winners could not cover.
    pub uncovered: i128,
    /// Σ lots closed × mark (atoms).
    pub notional_closed: i128,
}

/// Spreads `deficit` over `winners` by `policy`; `mark` prices the lots closed.
pub fn allocate(policy: AdlPolicy, deficit: i128, winners: &[Winner], mark: i64) -> Allocation {
    let eligible: Vec<usize> = (0..winners.len())
        .filter(|&i| winners[i].pnl > 0 && winners[i].lots > 0)
        .collect();
    let deficit = deficit.max(0);
    let mut x = vec![(0i128, 0i64); winners.len()];
    match policy {
        AdlPolicy::Queue => queue(deficit, winners, &eligible, &mut x),
        AdlPolicy::ProRata => pro_rata(deficit, winners, &eligible, &mut x),
        AdlPolicy::CappedProRata { cap_bps } => {
            capped(deficit, cap_bps.min(10_000), winners, &eligible, &mut x);
        }
        AdlPolicy::LeverageDraining => draining(deficit, winners, &eligible, &mut x),
    }
    let mut out = Allocation::default();
    for (w, &(haircut, lots)) in winners.iter().zip(&x) {
        if haircut > 0 || lots > 0 {
            out.takes.push(Take {
                account: w.account,
                haircut,
                lots,
            });
            out.taken += haircut;
            out.notional_closed += i128::from(lots) * i128::from(mark);
        }
    }
    out.overshoot = (out.taken - deficit).max(0);
    out.uncovered = (deficit - out.taken).max(0);
    out
}

/// Profit of `c` of a winner's lots: `w · c / s`, rounded up (against the winner).
fn profit_of(w: &Winner, c: i64) -> i128 {
    let num = w.pnl * i128::from(c);
    let s = i128::from(w.lots);
    (num + s - 1).div_euclid(s)
}

/// PnL% × leverage as a 32.32 figure (saturating): `(w/e) · (n/e)`.
fn queue_score(w: &Winner) -> i128 {
    if w.equity <= 0 {
        return i128::MAX; // a winner with no equity ranks first (infinite leverage)
    }
    let fixed = |x: i128| x.checked_mul(1 << 32).map_or(i128::MAX, |v| v / w.equity);
    fixed(w.pnl).saturating_mul(fixed(w.notional)) >> 32
}

fn queue(deficit: i128, winners: &[Winner], eligible: &[usize], x: &mut [(i128, i64)]) {
    let mut order = eligible.to_vec();
    order.sort_by(|&a, &b| {
        queue_score(&winners[b])
            .cmp(&queue_score(&winners[a]))
            .then(winners[a].account.cmp(&winners[b].account))
    });
    let mut taken = 0;
    for i in order {
        if taken >= deficit {
            break;
        }
        x[i] = (winners[i].pnl, winners[i].lots);
        taken += winners[i].pnl;
    }
}

/// Lots each winner closes at fraction `num / den` of its position, rounded up.
fn lots_at(w: &Winner, num: i128, den: i128) -> i64 {
    let c = (i128::from(w.lots) * num + den - 1).div_euclid(den);
    c.clamp(0, i128::from(w.lots)) as i64
}

fn pro_rata(deficit: i128, winners: &[Winner], eligible: &[usize], x: &mut [(i128, i64)]) {
    let total: i128 = eligible.iter().map(|&i| winners[i].pnl).sum();
    if deficit == 0 || total == 0 {
        return;
    }
    let cover = |num: i128, den: i128| -> i128 {
        eligible
            .iter()
            .map(|&i| profit_of(&winners[i], lots_at(&winners[i], num, den)))
            .sum()
    };
    // The smallest fraction f = k / 2^32 (k ≤ 2^32) whose rounded-up lots cover the
    // deficit (or all of it, if nothing less does): f·Σw ≥ D is the starting guess.
    let den = 1i128 << 32;
    let (mut lo, mut hi) = (0i128, den);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if cover(mid, den) >= deficit.min(total) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    for &i in eligible {
        let c = lots_at(&winners[i], lo, den);
        x[i] = (profit_of(&winners[i], c), c);
    }
}

fn capped(
    deficit: i128,
    cap_bps: u32,
    winners: &[Winner],
    eligible: &[usize],
    x: &mut [(i128, i64)],
) {
    let cap = |w: &Winner| w.pnl * i128::from(cap_bps) / 10_000;
    let room: i128 = eligible.iter().map(|&i| cap(&winners[i])).sum();
    let need = deficit.min(room);
    if need == 0 {
        return;
    }
    // Water-filling: η = need / Σ w over the uncapped; winners whose cap binds pay it.
    let mut capped_set = vec![false; winners.len()];
    loop {
        let fixed: i128 = eligible
            .iter()
            .filter(|&&i| capped_set[i])
            .map(|&i| cap(&winners[i]))
            .sum();
        let free: i128 = eligible
            .iter()
            .filter(|&&i| !capped_set[i])
            .map(|&i| winners[i].pnl)
            .sum();
        let rest = need - fixed;
        // η = rest / free; a winner is capped when η·w ≥ cap(w).
        let newly: Vec<usize> = eligible
            .iter()
            .copied()
            .filter(|&i| !capped_set[i] && rest * winners[i].pnl >= cap(&winners[i]) * free)
            .collect();
        if newly.is_empty() || free == 0 {
            assign_exact(rest, free, winners, eligible, &capped_set, x);
            for &i in eligible.iter().filter(|&&i| capped_set[i]) {
                x[i].0 = cap(&winners[i]);
            }
            return;
        }
        for i in newly {
            capped_set[i] = true;
        }
    }
}

/// `rest · w_i / free` to each uncapped winner, rounded down, then the atoms lost to
/// rounding one each by largest remainder (ties by account).
fn assign_exact(
    rest: i128,
    free: i128,
    winners: &[Winner],
    eligible: &[usize],
    capped_set: &[bool],
    x: &mut [(i128, i64)],
) {
    if free == 0 || rest <= 0 {
        return;
    }
    let mut remainders = Vec::new();
    let mut given = 0;
    for &i in eligible.iter().filter(|&&i| !capped_set[i]) {
        let num = rest * winners[i].pnl;
        x[i].0 = num / free;
        given += x[i].0;
        remainders.push((num % free, winners[i].account, i));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, _, i) in remainders.iter().take((rest - given) as usize) {
        x[i].0 += 1;
    }
}

/// Leverage as 32.32 (saturating; no equity: the most leveraged).
fn leverage(w: &Winner) -> Rate {
    if w.equity <= 0 {
        return Rate::MAX;
    }
    let bits = w
        .notional
        .checked_mul(1 << 32)
        .map_or(i128::MAX, |n| n / w.equity);
    Rate::from_bits(bits.min(i128::from(i64::MAX)) as i64)
}

/// Lots that bring a winner's leverage down to `level` (closing at the mark leaves its
/// equity unchanged): `ceil(s · (n − λe) / n)`.
fn lots_to_level(w: &Winner, level: Rate) -> i64 {
    if w.notional <= 0 {
        return 0;
    }
    let target = if w.equity <= 0 {
        0
    } else {
        // Past i128, the level keeps every notional: nothing to close.
        i128::from(level.to_bits())
            .checked_mul(w.equity)
            .map_or(i128::MAX, |t| t >> 32)
    };
    let excess = (w.notional - target).max(0);
    let c = i128::from(w.lots)
        .checked_mul(excess)
        .map_or(i128::from(w.lots), |x| {
            x.saturating_add(w.notional - 1).div_euclid(w.notional)
        });
    c.clamp(0, i128::from(w.lots)) as i64
}

fn draining(deficit: i128, winners: &[Winner], eligible: &[usize], x: &mut [(i128, i64)]) {
    let total: i128 = eligible.iter().map(|&i| winners[i].pnl).sum();
    if deficit == 0 || total == 0 {
        return;
    }
    let cover = |level: Rate| -> i128 {
        eligible
            .iter()
            .map(|&i| profit_of(&winners[i], lots_to_level(&winners[i], level)))
            .sum()
    };
    // The highest level λ (in 32.32 bits) whose draining covers the deficit.
    let need = deficit.min(total);
    let top = eligible
        .iter()
        .map(|&i| leverage(&winners[i]).to_bits())
        .max()
        .unwrap_or(0);
    let (mut lo, mut hi) = (0i64, top);
    while lo < hi {
        // The upper middle, without overflow when `hi` is i64::MAX (a winner with no
        // equity has unbounded leverage).
        let gap = hi - lo;
        let mid = lo + (gap >> 1) + (gap & 1);
        if cover(Rate::from_bits(mid)) >= need {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    for &i in eligible {
        let c = lots_to_level(&winners[i], Rate::from_bits(lo));
        x[i] = (profit_of(&winners[i], c), c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: u32, pnl: i128, equity: i128, notional: i128, lots: i64) -> Winner {
        Winner {
            account: AccountId(a),
            pnl,
            equity,
            notional,
            lots,
        }
    }

    #[test]
    fn hand_checked_allocations_of_a_100_atom_deficit() {
        // A: 10 lots, profit 300, equity 1,000, notional 10,000 (10×, PnL 30%: score 3)
        // B: 10 lots, profit 100, equity 2,000, notional 10,000 (5×, 5%: score 0.25)
        // C: 20 lots, profit 100, equity 500, notional 20,000 (40×, 20%: score 8)
        let ws = [
            w(1, 300, 1_000, 10_000, 10),
            w(2, 100, 2_000, 10_000, 10),
            w(3, 100, 500, 20_000, 20),
        ];
        // Queue: C first (score 8) covers exactly 100.
        let q = allocate(AdlPolicy::Queue, 100, &ws, 1_000);
        assert_eq!(
            q.takes,
            vec![Take {
                account: AccountId(3),
                haircut: 100,
                lots: 20
            }]
        );
        assert_eq!((q.overshoot, q.notional_closed), (0, 20_000));
        // 150: C then A, whole: 400 taken, 250 beyond the need.
        let q = allocate(AdlPolicy::Queue, 150, &ws, 1_000);
        assert_eq!((q.taken, q.overshoot), (400, 250));
        // Capped pro-rata, no cap: η = 100/500: 60, 20, 20.
        let c = allocate(
            AdlPolicy::CappedProRata { cap_bps: 10_000 },
            100,
            &ws,
            1_000,
        );
        let h: Vec<i128> = c.takes.iter().map(|t| t.haircut).collect();
        assert_eq!(
            (h, c.notional_closed, c.overshoot),
            (vec![60, 20, 20], 0, 0)
        );
        // Cap 10%: A pays at most 30, B 10, C 10: only 50 can be covered.
        let c = allocate(AdlPolicy::CappedProRata { cap_bps: 1_000 }, 100, &ws, 1_000);
        assert_eq!((c.taken, c.uncovered), (50, 50));
        // Pro-rata by size: fraction 1/5 of each position: 2, 2, 4 lots → 60, 20, 20.
        let p = allocate(AdlPolicy::ProRata, 100, &ws, 1_000);
        let l: Vec<(i128, i64)> = p.takes.iter().map(|t| (t.haircut, t.lots)).collect();
        assert_eq!(l, vec![(60, 2), (20, 2), (20, 4)]);
        // No smaller fraction covers: at most 3/20 of C (ceil 3 lots, 15) gives 95.
        assert_eq!((p.taken, p.overshoot, p.notional_closed), (100, 0, 8_000));
        // Leverage draining: the highest level λ that covers 100. At λ = 10×, C (40×)
        // keeps notional 10 × 500 = 5,000: it closes ceil(20 × 15,000 / 20,000) = 15 lots,
        // profit ceil(100 × 15 / 20) = 75 < 100, and A (10×) closes nothing. Just under
        // 10× (λ = 10 − 2⁻³²), A's kept notional floors to 9,999: 1 lot, profit 30; C's to
        // 4,999: ceil(15.0005) = 16 lots, profit 80. Taken 110, overshoot 10, B (5×)
        // untouched, 17 lots closed.
        let d = allocate(AdlPolicy::LeverageDraining, 100, &ws, 1_000);
        let l: Vec<(u32, i128, i64)> = d
            .takes
            .iter()
            .map(|t| (t.account.0, t.haircut, t.lots))
            .collect();
        assert_eq!(l, vec![(1, 30, 1), (3, 80, 16)]);
        assert_eq!((d.taken, d.overshoot, d.notional_closed), (110, 10, 17_000));
        // A winner with no equity has unbounded leverage: drained first, no overflow,
        // beside one with more equity than any probe level times it can hold.
        let broke = [w(1, 1, 0, 1, 1), w(2, 1, 1 << 70, 1, 1)];
        let d = allocate(AdlPolicy::LeverageDraining, 1, &broke, 1_000);
        assert_eq!((d.taken, d.takes.len()), (1, 1));
        let huge = [w(1, i128::MAX >> 2, 1, i128::MAX >> 2, 1)];
        for policy in [AdlPolicy::Queue, AdlPolicy::LeverageDraining] {
            assert_eq!(allocate(policy, 5, &huge, 1).taken, i128::MAX >> 2);
        }
    }
}
