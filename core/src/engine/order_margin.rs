//! Order margin (markets with `LiquidationConfig::order_margin`): after every command
//! (and its cascade), no pool resting orders in such a market is below initial margin. A pool that falls below it — the mark
//! moved, funding was paid, a fill moved its money — has all its resting orders
//! cancelled (`CancelReason::Margin`).
//!
//! Pools with resting orders are found like liquidations: a second trigger index per
//! leveraged market keyed by a conservative order-margin trigger
//! ([`RiskConfig::order_trigger_price`]) for a pool active in one market, and a
//! multi-market list otherwise. Keys are refreshed at the end of each command for the
//! accounts whose orders, positions, money or leverage changed.

use super::margin::PoolId;
use super::trigger::{Kind, Slot};
use super::{Engine, Out};
use crate::event::{CancelReason, EventSink};
use crate::pool::NIL;
use crate::risk::{ceil_div, mul_rate_up, RiskConfig};
use crate::types::{AccountId, MarketId};

/// How fast a long's order-margin threshold may rise per atom of funding per lot for
/// its key to stay in the index (`kappa` of the order-margin index).
pub(super) const ORDER_KAPPA: i64 = 4;

/// True if funding cannot move a keyed pool's order-margin threshold faster than the
/// index's query point (`SEMANTICS.md`): a flat pool owes nothing; a short's threshold
/// falls at most one for one; a long firing below rises by `size·lev / (size·lev −
/// worst·cap)` ≤ [`ORDER_KAPPA`]. Any other pool goes to the multi-market list.
fn funding_tracked(r: &RiskConfig, (size, worst, leverage): (i64, i128, u32), below: bool) -> bool {
    if size == 0 {
        return true;
    }
    if size < 0 {
        return !below;
    }
    let held = (i128::from(size) * i128::from(leverage.max(1))) << 32;
    let b = held - worst * i128::from(r.vol_cap.to_bits());
    below && held <= b.saturating_mul(ORDER_KAPPA.into())
}

impl Engine {
    /// Re-keys the order-margin index for every pool of the account, then cancels the
    /// orders of every queued pool below initial margin (ascending account, cross before
    /// isolated), until nothing is queued.
    pub(super) fn margin_cancels<S: EventSink>(&mut self, out: &mut Out<S>) {
        while !self.im_check.is_empty() {
            self.candidates.clear();
            let mut k = 0;
            while k < self.im_check.len() {
                let a = AccountId(self.im_check[k]);
                k += 1;
                self.accounts[a.0 as usize].im_queued = false;
                self.rekey_orders(a);
                self.collect_order_margin(a);
            }
            self.im_check.clear();
            self.candidates
                .sort_unstable_by_key(|c| (c.account.0, super::liquidation::pool_rank(c.pool)));
            for k in 0..self.candidates.len() {
                let c = self.candidates[k];
                self.cancel_pool_orders(c.account, c.pool, CancelReason::Margin, out);
            }
        }
    }

    /// Pushes the account's pools with resting orders in a liquidating market that are
    /// below initial margin.
    fn collect_order_margin(&mut self, a: AccountId) {
        let mut cross_done = false;
        let mut s = self.first_slot(a);
        while s != NIL {
            let slot = s;
            s = self.next_slot(s);
            let Some(pool) = self.triggered_pool(Kind::Initial, a, slot, &mut cross_done) else {
                continue;
            };
            let (equity, im) = self.pool_margin(a, pool, None);
            if equity < im {
                self.candidates
                    .push(super::liquidation::Candidate::new(a, pool, equity, im));
            }
        }
    }

    /// `(active markets, orders in a liquidating market)` of a pool: leveraged markets
    /// where it holds a position or resting orders.
    fn pool_activity(&self, a: AccountId, pool: PoolId) -> (usize, bool) {
        let (mut active, mut orders) = (0, false);
        for (id, p) in self.pool_positions(a, pool) {
            let Some(r) = self.risk_of(id) else { continue };
            let x = self.extra_of(p);
            let resting = x.buy_open != 0 || x.sell_open != 0;
            if p.size != 0 || resting {
                active += 1;
            }
            orders |= resting && r.liquidation.is_some_and(|l| l.order_margin);
        }
        (active, orders)
    }

    /// Refreshes the order-margin keys of every position of the account.
    pub(super) fn rekey_orders(&mut self, a: AccountId) {
        // Pairs without a slot hold no orders and no position: never linked.
        let mut s = self.first_slot(a);
        while s != NIL {
            let m = self.slot_market(s);
            if self.markets[m.0 as usize].im_trigger.is_some() {
                let (slot, key) = self.order_slot(a, m);
                self.link_orders(s, slot, key);
            }
            s = self.next_slot(s);
        }
    }

    /// Links slot `s` at `slot` and `key` in its market's order-margin index, through its
    /// extra: taken when it is linked, given back when unlinked and otherwise default.
    fn link_orders(&mut self, s: u32, slot: Slot, key: i64) {
        if slot == Slot::None && self.slots.pos[s as usize].extra == NIL {
            return;
        }
        let e = self.extra_index(s);
        let (m, lots) = (self.slot_market(s), self.slots.pos[s as usize].size.abs());
        self.relink(Kind::Initial, m.0 as usize, e as usize, slot, key, lots);
        self.release_extra_if_empty(s, false);
    }

    /// Where the account's position in leveraged market `m` belongs in the order-margin
    /// index: nowhere if its pool rests no orders in a liquidating market or the position
    /// is unused; the multi-market list if the pool is active in several markets (or
    /// funding could outrun its key); else its key (liquidating markets only).
    fn order_slot(&self, a: AccountId, m: MarketId) -> (Slot, i64) {
        match self.order_target(a, m) {
            Target::Unlinked => (Slot::None, 0),
            Target::Multi => (Slot::Multi, 0),
            Target::Keyed(below, key) => {
                let ix = self.markets[m.0 as usize].im_trigger.as_ref();
                (ix.expect("indexed").slot(below, key), key)
            }
        }
    }

    /// [`Engine::order_slot`] before the key is placed in a bucket.
    fn order_target(&self, a: AccountId, m: MarketId) -> Target {
        let r = self.risk_of(m).expect("indexed markets are leveraged");
        let pool = self.pool_of(a, m);
        let (active, orders) = self.pool_activity(a, pool);
        let p = self.pos(a, m);
        let x = self.extra_of(p);
        let in_use = p.size != 0 || x.buy_open != 0 || x.sell_open != 0;
        if !orders || !in_use || !r.liquidation.is_some_and(|l| l.order_margin) && active <= 1 {
            Target::Unlinked
        } else if active > 1 {
            Target::Multi
        } else {
            self.order_key(r, a, m, pool)
        }
    }

    /// Checks the order-margin index by brute force: list structure, every position in
    /// the slot and under the key its pool implies now, and every key a true bound (one
    /// tick past it, at the volatility cap, the pool meets initial margin).
    pub(super) fn verify_order_index(&self) -> Result<(), String> {
        if self.order_margin_markets == 0 {
            return Ok(());
        }
        for (m, mk) in self.markets.iter().enumerate() {
            let Some(ix) = mk.im_trigger.as_ref() else {
                continue;
            };
            let r = mk.book.cfg.risk.as_ref().expect("leveraged");
            let linked = ix.verify_lists(&self.im_links, m, |e| {
                let s = self.extra_owner(e);
                self.slots.pos.get(s as usize).is_some_and(|p| p.extra == e) && self.holds(s, m)
            })?;
            let mut expected = 0;
            let id = MarketId(m as u32);
            let mut h = self.first_holder(id);
            while h != NIL {
                let (e, a) = (self.slots.pos[h as usize].extra, self.slot_account(h));
                h = self.next_holder(h);
                let unlinked = super::trigger::Link::default();
                let l = self.im_links.get(e as usize).unwrap_or(&unlinked);
                let target = self.order_target(a, id);
                // Keys go stale as funding accrues (the query point carries the drift):
                // a keyed position must sit on its key's side and bucket, or nowhere when
                // the key is out of reach, and its key must be a bound now.
                let placed = match target {
                    Target::Unlinked => l.slot() == Slot::None,
                    Target::Multi => l.slot() == Slot::Multi,
                    Target::Keyed(below, _) => {
                        l.slot() == Slot::None || l.slot() == ix.slot(below, l.key)
                    }
                };
                if !placed {
                    return Err(format!(
                        "market {m} account {}: order margin linked {:?} with key {}",
                        a.0,
                        l.slot(),
                        l.key
                    ));
                }
                expected += usize::from(l.slot() != Slot::None);
                if let Target::Keyed(below, _) = target {
                    let (lo, hi) = ix.band();
                    let beyond = match (l.slot(), below) {
                        (Slot::None, true) => lo,
                        (Slot::None, false) => hi,
                        (_, true) => ix.first_safe(true, l.key).max(lo),
                        (_, false) => ix.first_safe(false, l.key).min(hi),
                    };
                    if (lo..=hi).contains(&beyond) {
                        let p = self.pos(a, id);
                        let pool = self.pool_of(a, id);
                        let size = i128::from(p.size);
                        let (worst, lev) = self.order_exposure(r, a, id);
                        let px = i128::from(beyond);
                        let equity = self.pool_money(a, pool) + size * px - p.cost;
                        let im = ceil_div(mul_rate_up(worst * px, r.vol_cap), i128::from(lev));
                        if equity < im {
                            return Err(format!(
                                "market {m} account {}: below IM at {beyond}, past its order key {}",
                                a.0, l.key
                            ));
                        }
                    }
                }
            }
            if expected != linked {
                return Err(format!(
                    "market {m}: {linked} order-margin links, {expected} expected"
                ));
            }
        }
        Ok(())
    }

    /// `(worst-case lots, leverage)` of the account's position and orders in `m`.
    fn order_exposure(&self, r: &RiskConfig, a: AccountId, m: MarketId) -> (i128, u32) {
        let leverage = match self.pos(a, m).leverage {
            0 => r.max_leverage,
            l => l,
        };
        (self.worst_lots(a, m, (0, 0)), leverage)
    }

    /// The order-margin key of a pool active only in market `m`.
    fn order_key(&self, r: &RiskConfig, a: AccountId, m: MarketId, pool: PoolId) -> Target {
        let p = self.pos(a, m);
        let (worst, leverage) = self.order_exposure(r, a, m);
        let ix = self.markets[m.0 as usize]
            .im_trigger
            .as_ref()
            .expect("indexed");
        // One atom less: settling accrued funding later may round it away.
        let (below, t) = r.order_trigger_price(
            (p.size, p.cost, self.pool_money(a, pool) - 1),
            worst,
            leverage,
            ix.key_band(),
        );
        if funding_tracked(r, (p.size, worst, leverage), below) {
            Target::Keyed(below, ix.to_key(below, t))
        } else {
            Target::Multi
        }
    }
}

/// Where a position belongs in the order-margin index, before bucketing.
enum Target {
    /// In no list.
    Unlinked,
    /// The market's multi-market list.
    Multi,
    /// A key: `(fires below, key)`.
    Keyed(bool, i64),
}
