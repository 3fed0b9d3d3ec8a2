//! Funding by index: a `FundingRate` command costs O(1) whatever the number of holders.
//!
//! Each leveraged market keeps a cumulative funding index `I` in 2^-32 atoms per lot:
//! a payment at rate `r` adds `mark × r` exactly (the bits of `r` are 2^-32). A position
//! of `size` lots whose snapshot is `s` owes `size × (I − s)` (negative: is owed). That
//! accrued amount counts in its pool's equity at once, rounded against the account
//! (`ceil(owed / 2^32)` atoms, which rounds a receipt down), and is settled into the
//! pool's money when the position next changes size (the fill's `PositionChanged`
//! carries it); the snapshot then becomes `I` (0 for a flat position). The insurance
//! fund's position settles at every payment. Settling moves the exact amount into the
//! market's funding ledger and the rounding remainder into a dust counter whose whole
//! atoms go to the fee ledger, so money is conserved to the atom.
//!
//! Invariants (checked by `verify_funding`): for every market, `settled + Σ owed = 0`
//! over the accounts' positions (the fund's payments are in `settled`: it owes nothing,
//! settling at once); a flat position's snapshot is 0; every snapshot lies in the range
//! the index has taken, and `open interest × that range < 2^126` at every payment, so
//! every owed amount fits; the dust counter is in `[0, 2^32)` after every command.
//! The trigger indexes follow funding by moving their query points (`trigger.rs`).

use super::margin::Position;
use super::{Engine, Out};
use crate::event::{EventKind, EventSink, RejectReason};
use crate::risk::{ceil_shift, Rate};
use crate::types::{AccountId, MarketId};

/// Largest `open interest × index range` a market may reach (see the module invariants).
const OWED_LIMIT: i128 = 1 << 126;

/// One market's funding state.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FundingState {
    /// Cumulative per-lot payment of a long, 2^-32 atoms.
    pub(super) index: i128,
    /// Lowest and highest value the index has taken (the range that bounds what any
    /// live position owes).
    low: i128,
    high: i128,
    /// Exact amounts settled by the positions, the fund's included (2^-32 atoms; paid
    /// in positive).
    settled: i128,
}

impl FundingState {
    /// The state [`FundingState::digest`] gave (snapshots).
    pub(super) fn from_parts([index, low, high, settled]: [i128; 4]) -> FundingState {
        FundingState {
            index,
            low,
            high,
            settled,
        }
    }

    /// The state as the state hash reads it: index, its range, the ledger.
    pub(super) fn digest(&self) -> [i128; 4] {
        [self.index, self.low, self.high, self.settled]
    }

    /// What a position of `size` lots with snapshot `snap` owes, 2^-32 atoms.
    pub(super) fn owed(&self, size: i64, snap: i128) -> i128 {
        i128::from(size) * (self.index - snap)
    }
}

impl Engine {
    /// Atoms the position's unsettled funding takes from its pool's equity: the accrued
    /// amount owed, rounded up (a receipt rounds down).
    pub(super) fn funding_due(&self, m: MarketId, p: &Position) -> i128 {
        ceil_shift(self.markets[m.0 as usize].funding.owed(p.size, p.funding))
    }

    /// Books a settlement of `owed` (2^-32 atoms) by a position of market `m`, the
    /// fund's included: the exact amount into the market's ledger, the rounding
    /// remainder into the dust counter (whole atoms to the fee ledger). Returns the atoms
    /// paid, `ceil(owed / 2^32)` (negative: received); the caller moves them.
    pub(super) fn book_settlement(&mut self, m: MarketId, owed: i128) -> i128 {
        let paid = ceil_shift(owed);
        self.markets[m.0 as usize].funding.settled += owed;
        self.funding_dust += (paid << 32) - owed;
        self.fee_ledger += self.funding_dust >> 32;
        self.funding_dust &= (1 << 32) - 1;
        paid
    }

    /// `FundingRate`: with `rate > 0` longs pay shorts (`rate < 0`: the reverse),
    /// `mark × rate` per lot, through the index (module docs); `|rate| ≤ 1`. O(1), plus
    /// the trigger-index query it implies (`Engine::funding_moved`).
    pub(super) fn funding<S: EventSink>(
        &mut self,
        m: MarketId,
        rate: Rate,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        self.market(m)?;
        self.risk_of(m).ok_or(RejectReason::NotLeveraged)?;
        let mk = &self.markets[m.0 as usize];
        if mk.mark == 0 {
            return Err(RejectReason::NoMarkPrice);
        }
        // Two comparisons, not `rate.abs()`: `Rate::MIN` has no positive counterpart, so
        // its absolute value overflows.
        if rate > Rate::ONE || rate < -Rate::ONE {
            return Err(RejectReason::FundingRateTooLarge);
        }
        let delta = i128::from(mk.mark) * i128::from(rate.to_bits());
        let f = mk.funding;
        let index = f.index + delta; // |delta| < 2^95 and the range check keeps |index| small
        let (low, high) = (f.low.min(index), f.high.max(index));
        let oi = i128::from(mk.oi);
        if (high - low)
            .checked_mul(oi.max(1))
            .is_none_or(|v| v >= OWED_LIMIT)
        {
            return Err(RejectReason::FundingIndexLimit);
        }
        if delta == 0 {
            return Ok(());
        }
        let fund_size = mk.fund_size;
        self.markets[m.0 as usize].funding = FundingState {
            index,
            low,
            high,
            ..f
        };
        out.emit(EventKind::FundingIndexed {
            market: m,
            delta,
            index,
        });
        if fund_size != 0 {
            let paid = self.book_settlement(m, i128::from(fund_size) * delta);
            out.emit(EventKind::FundingPaid {
                account: AccountId::FUND,
                market: m,
                amount: super::margin::saturate(-paid),
            });
            self.change_fund(self.fund_of(m.0 as usize), -paid, out);
        }
        self.funding_moved(m.0 as usize, delta);
        Ok(())
    }

    /// `Σ settled` over the markets plus the dust counter, in atoms: the money the
    /// funding ledgers hold (exact: the sum is a whole number of atoms).
    pub(super) fn funding_held(&self) -> i128 {
        let (whole, rest) = self.settled_parts();
        whole + ((rest + self.funding_dust) >> 32)
    }

    /// `(Σ floor(settled / 2^32), Σ (settled mod 2^32))` over the markets: each ledger
    /// may approach 2^127, so they are summed in atoms and remainders.
    fn settled_parts(&self) -> (i128, i128) {
        self.markets.iter().fold((0, 0), |(w, r), m| {
            (
                w + (m.funding.settled >> 32),
                r + (m.funding.settled & ((1 << 32) - 1)),
            )
        })
    }

    /// Checks the module invariants by brute force.
    pub(super) fn verify_funding(&self) -> Result<(), String> {
        if !(0..1 << 32).contains(&self.funding_dust) {
            return Err(format!("funding dust {} out of range", self.funding_dust));
        }
        let (_, rest) = self.settled_parts();
        if (rest + self.funding_dust) & ((1 << 32) - 1) != 0 {
            return Err("funding ledgers do not hold whole atoms".into());
        }
        for (mi, mk) in self.markets.iter().enumerate() {
            let f = &mk.funding;
            let mut owed = 0i128;
            let mut h = self.first_holder(MarketId(mi as u32));
            while h != crate::pool::NIL {
                let p = &self.slots.pos[h as usize];
                if p.size == 0 && p.funding != 0 {
                    return Err(format!(
                        "market {mi}: flat position with a funding snapshot"
                    ));
                }
                if p.funding < f.low || p.funding > f.high {
                    return Err(format!("market {mi}: snapshot outside the index range"));
                }
                owed += f.owed(p.size, p.funding);
                h = self.next_holder(h);
            }
            if f.settled + owed != 0 {
                return Err(format!(
                    "market {mi}: settled {} + owed {owed} != 0",
                    f.settled
                ));
            }
        }
        Ok(())
    }
}
