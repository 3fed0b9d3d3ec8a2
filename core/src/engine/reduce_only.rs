//! Resting reduce-only orders: placed only when they reduce, and trimmed at the end of
//! every command to what their position still needs closed.
//!
//! Invariant (after every command, checked by `verify`): for every account, market and
//! side, the resting reduce-only quantity on that side is at most the part of the
//! position it closes (`|size|` when the side is opposite to the position, else 0).

use super::{Engine, Out};
use crate::event::{CancelReason, EventKind, EventSink, RejectReason};
use crate::pool::NIL;
use crate::types::{AccountId, MarketId, Qty, Side};

/// Index of a (market, side) in `Engine::ro_totals`.
fn ro_index(m: MarketId, side: Side) -> usize {
    2 * m.0 as usize + usize::from(side == Side::Sell)
}

impl Engine {
    /// Lots a reduce-only order on `side` of market `m` may close: `|size|` if the side
    /// is opposite to the account's position, else 0.
    pub(super) fn closable(&self, a: AccountId, m: MarketId, side: Side) -> i64 {
        let size = self.pos(a, m).size;
        let opposite = (size > 0 && side == Side::Sell) || (size < 0 && side == Side::Buy);
        if opposite {
            size.abs()
        } else {
            0
        }
    }

    /// Resting reduce-only lots of the account on `side` of `m`, walking its list from
    /// `from` toward older orders (`NIL`: none), skipping `except`.
    fn reduce_only_before(&self, m: MarketId, side: Side, from: u32, except: u32) -> i64 {
        let (mut total, mut slot) = (0, from);
        while slot != NIL {
            let o = &self.pool[slot];
            if o.reduce_only && o.market == m && o.side == side && slot != except {
                total += o.qty.0;
            }
            slot = o.acct_prev;
        }
        total
    }

    /// The reduce-only rule of a new order or a replace (`except`: the order replaced):
    /// opposite to the position and no larger than it less the account's other resting
    /// reduce-only orders on that side.
    pub(super) fn check_reduce_only(
        &self,
        a: AccountId,
        m: MarketId,
        side: Side,
        qty: i64,
        except: Option<u32>,
    ) -> Result<(), RejectReason> {
        let tail = self.accounts[a.0 as usize].tail;
        let others = self.reduce_only_before(m, side, tail, except.unwrap_or(NIL));
        if qty <= self.closable(a, m, side) - others {
            Ok(())
        } else {
            Err(RejectReason::ReduceOnlyWouldIncrease)
        }
    }

    /// Queues the account for the end-of-command trim if it rests reduce-only orders.
    pub(super) fn queue_reduce_only(&mut self, a: AccountId) {
        let acct = &mut self.accounts[a.0 as usize];
        if acct.reduce_only_orders > 0 && !acct.ro_queued {
            acct.ro_queued = true;
            self.ro_check.push(a.0);
        }
    }

    /// Trims the queued accounts' resting reduce-only orders, ascending account id, each
    /// account's newest first: an order keeps at most what its position still needs
    /// after its older reduce-only orders on the same side; the excess is cancelled.
    ///
    /// Two passes over the account's list: the reduce-only total per (market, side), then
    /// newest first, each order taking its own quantity off its total, which leaves the
    /// quantity of the older ones (untrimmed so far). The totals return to zero.
    pub(super) fn trim_reduce_only<S: EventSink>(&mut self, out: &mut Out<S>) {
        self.ro_check.sort_unstable();
        for k in 0..self.ro_check.len() {
            let a = AccountId(self.ro_check[k]);
            self.accounts[a.0 as usize].ro_queued = false;
            let mut slot = self.accounts[a.0 as usize].head;
            while slot != NIL {
                let o = &self.pool[slot];
                if o.reduce_only {
                    self.ro_totals[ro_index(o.market, o.side)] += o.qty.0;
                }
                slot = o.acct_next;
            }
            let mut slot = self.accounts[a.0 as usize].tail;
            while slot != NIL {
                let o = self.pool[slot];
                let older = o.acct_prev;
                if o.reduce_only {
                    let total = &mut self.ro_totals[ro_index(o.market, o.side)];
                    *total -= o.qty.0;
                    let older_qty = *total;
                    let keep = (self.closable(a, o.market, o.side) - older_qty).clamp(0, o.qty.0);
                    if keep == 0 {
                        self.cancel_slot(slot, CancelReason::ReduceOnly, out);
                    } else if keep < o.qty.0 {
                        self.trim_slot(slot, o.qty.0 - keep, out);
                    }
                }
                slot = older;
            }
        }
        self.ro_check.clear();
    }

    /// Takes `by` lots off a resting order in place (it keeps its priority).
    fn trim_slot<S: EventSink>(&mut self, slot: u32, by: i64, out: &mut Out<S>) {
        let o = self.pool[slot];
        self.take_from_maker(slot, by);
        out.emit(EventKind::Cancelled {
            order_id: o.id,
            account: o.account,
            qty: Qty(by),
            remaining: Qty(o.qty.0 - by),
            reason: CancelReason::ReduceOnly,
        });
        self.emit_level(o.market, o.side, o.price, out);
    }

    /// Checks the module invariant by brute force.
    pub(super) fn verify_reduce_only(&self) -> Result<(), String> {
        for (a, acct) in self.accounts.iter().enumerate() {
            let (mut slot, mut count) = (acct.tail, 0);
            while slot != NIL {
                let o = &self.pool[slot];
                if o.reduce_only {
                    count += 1;
                    let total = self.reduce_only_before(o.market, o.side, slot, NIL);
                    if total > self.closable(AccountId(a as u32), o.market, o.side) {
                        return Err(format!("order {:?}: reduce-only beyond its position", o.id));
                    }
                }
                slot = o.acct_prev;
            }
            if count != acct.reduce_only_orders {
                return Err(format!("account {a}: reduce-only count {count}"));
            }
        }
        Ok(())
    }
}
