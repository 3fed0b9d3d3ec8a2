//! The liquidation trigger index: finds the positions that may have fallen below
//! maintenance margin without scanning every account.
//!
//! A position alone in its pool (isolated, or the only cross position of its account)
//! is keyed by its conservative trigger price ([`RiskConfig::trigger_price`]), which
//! depends only on size, cost and pool money, not on the mark or the current volatility
//! scale: it is recomputed when those change (fills, funding, money commands), never on
//! a mark move. Keys sit in price buckets over the market's band, one list per bucket
//! and side, with a hierarchical bitmap of non-empty buckets per side; a mark move visits
//! the buckets at or beyond the mark, i.e. O(log buckets + candidates + one bucket).
//! A cross pool holding several liquidating markets gets box keys: the widest box around
//! the current marks (from [`BOX_BPS`]) within which the pool meets MM at the volatility
//! cap whatever each mark does on its safe side, each position keyed at its box edge in
//! its own market and carrying no lots (not in the heatmap). A mark move then re-checks
//! only the pools whose box it left, and a quiet one touches nothing; a pool found this
//! way but still above MM is re-keyed around the new marks. Pools no box fits, and pools
//! that also hold a leveraged market without liquidation, sit in a per-market list
//! re-checked on every mark move of that market (markets without liquidation keep only
//! that list). Every candidate is then checked exactly.
//!
//! Invariants (checked by `verify_triggers`): every position with a non-zero size in a
//! market with liquidation parameters is in exactly one list of that market — its key's
//! bucket and side if it is alone in its pool (with `lots = |size|`), its box key's bucket
//! and side (no lots) or the multi-market list otherwise; every pool's box keys are a
//! true bound; bucket bits are set exactly for non-empty buckets; `heat` sums `lots`.

use super::{margin::PoolId, Engine};
use crate::book::bitmap::Bitmap;
use crate::market::MarketConfig;
use crate::pool::NIL;
use crate::risk::{ceil_div, ceil_shift, mul_rate_down, mul_rate_up, Rate, RiskConfig};
use crate::types::{AccountId, MarketId, Price};

/// Most trigger buckets per market.
pub const MAX_BUCKETS: usize = 4096;

/// The index scale for a market whose volatility scale is `scale`: 1.25 × the scale (at
/// least the floor), at most the cap.
pub(super) fn key_scale_for(r: &RiskConfig, scale: Rate) -> Rate {
    let up = scale
        .max(r.vol_floor)
        .saturating_mul(Rate::from_bits(5 << 30));
    up.min(r.vol_cap)
}

/// Reports a bucketed heatmap over a band `(lo, hi, width)`: for each bucket, lowest
/// first, `f(low, high, first half of heat, second half)` (longs/shorts, buys/sells).
pub(super) fn bucket_rows(
    (lo, hi, width): (i64, i64, i64),
    heat: &[i64],
    mut f: impl FnMut(Price, Price, i64, i64),
) {
    let n = heat.len() / 2;
    for b in 0..n {
        let low = lo + b as i64 * width;
        f(
            Price(low),
            Price((low + width - 1).min(hi)),
            heat[b],
            heat[n + b],
        );
    }
}

/// Box widths tried for a pool holding several liquidating markets, in bps of each mark,
/// widest first (see `Engine::box_width`).
pub const BOX_BPS: [i64; 7] = [500, 200, 100, 50, 20, 10, 0];

/// Atoms per position a box must hold beyond MM (see `Engine::box_width`).
const BOX_SLACK: i128 = 18;

/// Where a position is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum Slot {
    /// Not indexed: flat, no liquidation in this market, or a key outside the band that
    /// no admissible mark can reach.
    #[default]
    None,
    /// Long, liquidatable at marks ≤ key; in this bucket.
    Long(u32),
    /// Short, liquidatable at marks ≥ key; in this bucket.
    Short(u32),
    /// Part of a cross pool holding several markets.
    Multi,
}

impl Slot {
    /// Four bytes: 0 none, 1 multi, `2 + 2b` long in bucket `b`, `3 + 2b` short.
    fn pack(self) -> u32 {
        match self {
            Slot::None => 0,
            Slot::Multi => 1,
            Slot::Long(b) => 2 + 2 * b,
            Slot::Short(b) => 3 + 2 * b,
        }
    }

    fn unpack(v: u32) -> Slot {
        match v {
            0 => Slot::None,
            1 => Slot::Multi,
            v if v % 2 == 0 => Slot::Long((v - 2) / 2),
            v => Slot::Short((v - 3) / 2),
        }
    }
}

/// Lots as the heatmap counts them: saturated at `u32::MAX` per position (a link keeps
/// 24 bytes; only a position of over 4 × 10^9 lots is under-counted).
pub(super) fn heat_lots(lots: i64) -> i64 {
    lots.clamp(0, i64::from(u32::MAX))
}

/// One position's links in one index (24 bytes): the liquidation index's parallel to
/// the engine's position slots, the order-margin index's to the positions' extras.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Link {
    next: u32,
    prev: u32,
    /// The packed [`Slot`].
    place: u32,
    /// [`heat_lots`] of the lots it adds to its bucket's heat.
    lots: u32,
    pub(super) key: i64,
}

impl Link {
    /// True if the position is in a list.
    pub(super) fn linked(&self) -> bool {
        self.place != 0
    }

    /// Where the position is linked.
    pub(super) fn slot(&self) -> Slot {
        Slot::unpack(self.place)
    }

    /// The lots it adds to its bucket's heat.
    fn lots(&self) -> i64 {
        i64::from(self.lots)
    }

    fn new(next: u32, prev: u32, slot: Slot, key: i64, lots: i64) -> Link {
        Link {
            next,
            prev,
            place: slot.pack(),
            lots: heat_lots(lots) as u32,
            key,
        }
    }
}

/// One market's trigger buckets.
#[derive(Clone, Debug)]
pub(super) struct TriggerIndex {
    /// The market's price band.
    lo: i64,
    hi: i64,
    /// Lowest price of bucket 0: `lo − reach`.
    base: i64,
    /// Prices per bucket.
    width: i64,
    long_head: Vec<u32>,
    short_head: Vec<u32>,
    multi_head: u32,
    long_bits: Bitmap,
    short_bits: Bitmap,
    /// Lots per bucket, longs then shorts: the liquidation heatmap.
    heat: Vec<i64>,
    /// Funding drift (module docs): how fast a long's threshold can rise per atom of
    /// funding per lot (≥ 1; a short's falls at most one for one).
    kappa: Rate,
    /// Funding paid per lot since the last rebase by longs and by shorts (2^-32 atoms;
    /// receipts are not netted: only payments can push a pool down).
    long_drift: i128,
    short_drift: i128,
    /// Query-point shifts: `ceil(kappa × ceil(long_drift))`, `ceil(short_drift)` (atoms).
    long_shift: i64,
    short_shift: i64,
    /// Most shift before the index is rebased (its keys recomputed with no drift).
    reach: i64,
}

impl TriggerIndex {
    /// An empty index over the market's band: [`MAX_BUCKETS`] at most for a liquidating
    /// market; one for a leveraged market without liquidation (only its multi-market
    /// list is used: a mark move there can push a cross pool that also holds a
    /// liquidating market below MM).
    pub(super) fn new(cfg: &MarketConfig, kappa: Rate) -> TriggerIndex {
        let (lo, hi, tick) = (cfg.min_price.0, cfg.max_price.0, cfg.tick);
        // Buckets cover the band widened by the reach on both sides: where query points
        // and keys can lie between two rebases.
        let reach = ((hi - lo) / 4 / tick * tick).max(tick);
        let (base, top) = (lo - reach, hi + reach);
        let levels = ((top - base) / tick + 1) as usize;
        let liquidating = cfg.risk.is_some_and(|r| r.liquidation.is_some());
        let n = if liquidating {
            levels.min(MAX_BUCKETS)
        } else {
            1
        };
        let width = (levels.div_ceil(n)) as i64 * tick;
        let n = ((top - base) / width + 1) as usize;
        TriggerIndex {
            lo,
            hi,
            base,
            width,
            long_head: vec![NIL; n],
            short_head: vec![NIL; n],
            multi_head: NIL,
            long_bits: Bitmap::new(n),
            short_bits: Bitmap::new(n),
            heat: vec![0; 2 * n],
            kappa,
            long_drift: 0,
            short_drift: 0,
            long_shift: 0,
            short_shift: 0,
            reach,
        }
    }

    fn bucket(&self, price: i64) -> u32 {
        let top = self.hi + self.reach;
        ((price.clamp(self.base, top) - self.base) / self.width) as u32
    }

    /// `(lowest, highest)` admissible price.
    pub(super) fn band(&self) -> (i64, i64) {
        (self.lo, self.hi)
    }

    /// Number of buckets.
    fn buckets(&self) -> usize {
        self.long_head.len()
    }

    /// The band keys are computed over: the price band widened by the reach, so that a
    /// key clamped outside it stays out of reach until the next rebase.
    pub(super) fn key_band(&self) -> (i64, i64) {
        (self.lo - self.reach, self.hi + self.reach)
    }

    /// `(long, short)` query points at `mark`: a long key fires at `long ≤ key`, a short
    /// key at `short ≥ key`.
    pub(super) fn query(&self, mark: i64) -> (i64, i64) {
        (mark - self.long_shift, mark + self.short_shift)
    }

    /// A threshold price computed now (`t`, or a box edge) turned into a key: shifted by
    /// the drift so far, rounded so that the key stays a bound as drift accrues.
    pub(super) fn to_key(&self, fires_below: bool, t: i64) -> i64 {
        if fires_below {
            let drift = (self.long_drift >> 32).min(i128::from(self.reach) + 1);
            let floor = mul_rate_down(drift, self.kappa);
            t.saturating_sub(floor as i64)
        } else {
            let drift = (self.short_drift >> 32).min(i128::from(self.reach) + 1);
            t.saturating_add(drift as i64)
        }
    }

    /// Adds a funding payment of `delta` per lot by longs (negative: by shorts); returns
    /// whether a shift passed the reach (the index must be rebased).
    pub(super) fn add_drift(&mut self, delta: i128) -> bool {
        let cap = i128::from(self.reach) + 1;
        if delta > 0 {
            self.long_drift = self.long_drift.saturating_add(delta);
            let atoms = ceil_shift(self.long_drift).min(cap);
            self.long_shift = mul_rate_up(atoms, self.kappa).min(cap) as i64;
        } else {
            self.short_drift = self.short_drift.saturating_sub(delta);
            self.short_shift = ceil_shift(self.short_drift).min(cap) as i64;
        }
        self.long_shift > self.reach || self.short_shift > self.reach
    }

    /// Forgets the drift: every key of the index must then be recomputed.
    pub(super) fn rebase(&mut self) {
        (self.long_drift, self.short_drift) = (0, 0);
        (self.long_shift, self.short_shift) = (0, 0);
    }

    /// The extreme mark a key fires at now: the highest for a long key, the lowest for
    /// a short one.
    fn fires_up_to(&self, fires_below: bool, key: i64) -> i64 {
        if fires_below {
            key.saturating_add(self.long_shift)
        } else {
            key.saturating_sub(self.short_shift)
        }
    }

    /// The first mark beyond which a key does not fire now (long: above, short: below).
    pub(super) fn first_safe(&self, fires_below: bool, key: i64) -> i64 {
        let edge = self.fires_up_to(fires_below, key);
        if fires_below {
            edge.saturating_add(1)
        } else {
            edge.saturating_sub(1)
        }
    }
}

impl TriggerIndex {
    /// Unlinks link `i` (a slot or an extra: see [`Link`]) from whatever list holds it.
    fn unlink(&mut self, links: &mut [Link], i: usize) {
        let l = links[i];
        let n = self.long_head.len();
        let head = match l.slot() {
            Slot::None => return,
            Slot::Long(b) => {
                self.heat[b as usize] -= l.lots();
                &mut self.long_head[b as usize]
            }
            Slot::Short(b) => {
                self.heat[n + b as usize] -= l.lots();
                &mut self.short_head[b as usize]
            }
            Slot::Multi => &mut self.multi_head,
        };
        if l.prev == NIL {
            *head = l.next;
        } else {
            links[l.prev as usize].next = l.next;
        }
        if l.next != NIL {
            links[l.next as usize].prev = l.prev;
        }
        match l.slot() {
            Slot::Long(b) if self.long_head[b as usize] == NIL => self.long_bits.clear(b as usize),
            Slot::Short(b) if self.short_head[b as usize] == NIL => {
                self.short_bits.clear(b as usize);
            }
            _ => {}
        }
        links[i].place = 0;
    }

    /// Links link `i` at the head of the list `slot` names (nothing for `None`).
    fn link(&mut self, links: &mut [Link], i: usize, slot: Slot, key: i64, lots: i64) {
        let n = self.long_head.len();
        let head = match slot {
            Slot::None => {
                // Not in any list, but the key is kept: a box key beyond the band still
                // bounds its pool.
                links[i] = Link::new(NIL, NIL, slot, key, lots);
                return;
            }
            Slot::Long(b) => {
                self.heat[b as usize] += heat_lots(lots);
                self.long_bits.set(b as usize);
                &mut self.long_head[b as usize]
            }
            Slot::Short(b) => {
                self.heat[n + b as usize] += heat_lots(lots);
                self.short_bits.set(b as usize);
                &mut self.short_head[b as usize]
            }
            Slot::Multi => &mut self.multi_head,
        };
        let old = *head;
        *head = i as u32;
        if old != NIL {
            links[old as usize].prev = i as u32;
        }
        links[i] = Link::new(old, NIL, slot, key, lots);
    }

    /// The slot of a key: `Long` fires at query points ≤ key, `Short` at query points
    /// ≥ key; `None` when no query point can reach it before the next rebase (a query
    /// point lies within the reach beyond the band).
    pub(super) fn slot(&self, fires_below: bool, key: i64) -> Slot {
        if fires_below && key >= self.base {
            Slot::Long(self.bucket(key))
        } else if !fires_below && key <= self.hi + self.reach {
            Slot::Short(self.bucket(key))
        } else {
            Slot::None
        }
    }
}

impl TriggerIndex {
    /// Checks the lists, bucket bits and heatmap against each other (`in_market` says
    /// whether link `i` belongs to a live position of this market); returns the number
    /// of positions linked.
    pub(super) fn verify_lists(
        &self,
        links: &[Link],
        m: usize,
        in_market: impl Fn(u32) -> bool,
    ) -> Result<usize, String> {
        let n = self.buckets();
        let mut heat = vec![0i64; 2 * n];
        let mut linked = 0usize;
        let heads = self
            .long_head
            .iter()
            .chain(&self.short_head)
            .chain([&self.multi_head]);
        for (b, &head) in heads.enumerate() {
            let (mut prev, mut i) = (NIL, head);
            while i != NIL {
                let l = links[i as usize];
                if l.prev != prev || !in_market(i) {
                    return Err(format!("market {m}: trigger list {b} broken at {i}"));
                }
                if b < 2 * n {
                    heat[b] += l.lots();
                }
                linked += 1;
                prev = i;
                i = l.next;
            }
        }
        if heat != self.heat {
            return Err(format!("market {m}: heatmap out of step"));
        }
        for b in 0..n {
            if self.long_bits.get(b) != (self.long_head[b] != NIL)
                || self.short_bits.get(b) != (self.short_head[b] != NIL)
            {
                return Err(format!("market {m}: bucket bit {b} wrong"));
            }
        }
        Ok(linked)
    }
}

/// Which requirement an index watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Maintenance margin of pools with positions (liquidation).
    Maintenance,
    /// Initial margin of pools with resting orders (margin cancels).
    Initial,
}

impl Engine {
    /// The index of `kind` in market `m` and its links.
    fn parts(&mut self, kind: Kind, m: usize) -> (&mut TriggerIndex, &mut [Link]) {
        let mk = &mut self.markets[m];
        match kind {
            Kind::Maintenance => (mk.trigger.as_mut().expect("indexed"), &mut self.links),
            Kind::Initial => (mk.im_trigger.as_mut().expect("indexed"), &mut self.im_links),
        }
    }

    /// Moves position `i` of market `m` to `slot` in the index of `kind`.
    pub(super) fn relink(
        &mut self,
        kind: Kind,
        m: usize,
        i: usize,
        slot: Slot,
        key: i64,
        lots: i64,
    ) {
        let (ix, links) = self.parts(kind, m);
        let l = &links[i];
        if l.slot() == slot && l.key == key && l.lots() == heat_lots(lots) {
            return;
        }
        ix.unlink(links, i);
        ix.link(links, i, slot, key, lots);
    }

    /// Unlinks slot `s` of market `m` from the liquidation index (before it is freed).
    pub(super) fn unlink_liquidation(&mut self, m: usize, s: usize) {
        if let Some(ix) = self.markets[m].trigger.as_mut() {
            if s < self.links.len() {
                ix.unlink(&mut self.links, s);
            }
        }
    }

    /// Unlinks extra `e` of market `m` from the order-margin index (before it is freed).
    pub(super) fn unlink_orders(&mut self, m: usize, e: u32) {
        if let Some(ix) = self.markets[m].im_trigger.as_mut() {
            ix.unlink(&mut self.im_links, e as usize);
        }
    }

    /// Re-keys every position of a pool after its money or positions changed, and queues
    /// the account for the end-of-command check.
    pub(super) fn touch(&mut self, a: AccountId, pool: PoolId) {
        if self.liquidating_markets == 0 {
            return;
        }
        self.rekey(a, pool);
        self.queue_check(a);
    }

    /// True if slot `s` holds a position of `pool` in a leveraged market.
    fn in_pool_slot(&self, s: u32, pool: PoolId) -> bool {
        let m = self.slot_market(s);
        self.slots.pos[s as usize].size != 0
            && self.markets[m.0 as usize].book.cfg.risk.is_some()
            && match pool {
                PoolId::Cross => !self.is_isolated(&self.slots.pos[s as usize]),
                PoolId::Isolated(x) => x == m,
            }
    }

    /// Re-keys every position of a pool. A position alone in its pool gets its exact
    /// trigger price at the market's index scale; the positions of a pool holding several
    /// liquidating markets get box keys (see [`Engine::box_width`]), or the multi-market
    /// list when no box fits or the pool also holds a market without liquidation.
    pub(super) fn rekey(&mut self, a: AccountId, pool: PoolId) {
        if self.liquidating_markets == 0 {
            return;
        }
        // Positions in the pool in any leveraged market: a key is exact only for a
        // position alone in its pool.
        let (mut held, mut plain) = (0, false);
        let mut s = self.first_slot(a);
        while s != NIL {
            if self.in_pool_slot(s, pool) {
                held += 1;
                let m = self.slot_market(s).0 as usize;
                plain |= self.markets[m]
                    .book
                    .cfg
                    .risk
                    .is_some_and(|r| r.liquidation.is_none());
            }
            s = self.next_slot(s);
        }
        let money = self.pool_money(a, pool);
        let width = if held > 1 && !plain {
            self.box_width(a, pool, money)
        } else {
            None
        };
        let mut s = self.first_slot(a);
        while s != NIL {
            let (m, p, next) = (
                self.slot_market(s).0 as usize,
                self.slots.pos[s as usize],
                self.next_slot(s),
            );
            let in_pool = match pool {
                PoolId::Cross => !self.is_isolated(&p),
                PoolId::Isolated(x) => x.0 as usize == m,
            };
            let Some(r) = self.markets[m]
                .book
                .cfg
                .risk
                .as_ref()
                .filter(|_| self.markets[m].trigger.is_some() && in_pool)
            else {
                s = next;
                continue;
            };
            let (slot, key, lots) = if p.size == 0 {
                (Slot::None, 0, 0)
            } else if let Some(bps) = width {
                let key = self.box_key(m, p.size, bps);
                (self.slot_for(m, p.size, key), key, 0)
            } else if held > 1 {
                (Slot::Multi, 0, p.size.abs())
            } else if r.liquidation.is_some() {
                let ix = self.markets[m].trigger.as_ref().expect("indexed");
                // One atom less: settling accrued funding later may round it away.
                let t = r.trigger_price_at(
                    p.size,
                    p.cost,
                    money - 1,
                    ix.key_band(),
                    self.markets[m].key_scale,
                );
                let key = ix.to_key(p.size > 0, t);
                (self.slot_for(m, p.size, key), key, p.size.abs())
            } else {
                (Slot::None, 0, 0)
            };
            self.relink(Kind::Maintenance, m, s as usize, slot, key, lots);
            s = next;
        }
    }

    /// The edge of a box of `bps` around market `m`'s mark on the adverse side of a
    /// position of `size`, clamped into the band: the lowest mark a long is safe at, the
    /// highest for a short.
    fn box_edge(&self, m: usize, size: i64, bps: i64) -> i64 {
        let mk = &self.markets[m];
        let (lo, hi) = mk.trigger.as_ref().expect("indexed").band();
        let mark = i128::from(mk.mark);
        if size > 0 {
            (ceil_div(mark * i128::from(10_000 - bps), 10_000) as i64).clamp(lo, hi)
        } else {
            ((mark * i128::from(10_000 + bps)).div_euclid(10_000) as i64).clamp(lo, hi)
        }
    }

    /// The box key of a position: a long is re-checked once its mark falls below the box
    /// edge (`edge − 1`), a short once it rises above it (`edge + 1`).
    fn box_key(&self, m: usize, size: i64, bps: i64) -> i64 {
        let edge = self.box_edge(m, size, bps);
        let ix = self.markets[m].trigger.as_ref().expect("indexed");
        if size > 0 {
            ix.to_key(true, edge - 1)
        } else {
            ix.to_key(false, edge + 1)
        }
    }

    /// The widest box (in bps of each mark, from [`BOX_BPS`]) such that with every mark
    /// of the pool's positions anywhere on its safe side of the box edge, the pool meets
    /// MM at the index scale: `money + Σ (size × edge − cost − MM_cap(edge)) ≥ 18 × n`
    /// over its `n` positions (each term is monotone in its own mark, worst at the edge;
    /// the 18 atoms per position cover the rounding of funding accrued later and of MM
    /// between the edge and a mark pushed past it by funding: `SEMANTICS.md`). Then a
    /// mark move of one market needs only the pool's key there, and a quiet move
    /// touches nothing.
    /// `None` if not even the current marks fit (the pool stays on the multi-market
    /// lists, re-checked on every mark move).
    fn box_width(&self, a: AccountId, pool: PoolId, money: i128) -> Option<i64> {
        BOX_BPS.into_iter().find(|&bps| {
            let mut total = money;
            let mut s = self.first_slot(a);
            while s != NIL {
                if self.in_pool_slot(s, pool) {
                    let m = self.slot_market(s).0 as usize;
                    let p = &self.slots.pos[s as usize];
                    let edge = self.box_edge(m, p.size, bps);
                    total += self.value_at_cap(m, p.size, p.cost, edge) - BOX_SLACK;
                }
                s = self.next_slot(s);
            }
            total >= 0
        })
    }

    /// `size × price − cost − MM(|size| × price)` at the market's index scale: a position's
    /// contribution to its pool's equity over MM at `price`.
    pub(super) fn value_at_cap(&self, m: usize, size: i64, cost: i128, price: i64) -> i128 {
        let r = self.markets[m].book.cfg.risk.expect("leveraged");
        let n = i128::from(size) * i128::from(price);
        n - cost - mul_rate_up(r.maintenance_base(n.abs()), self.markets[m].key_scale)
    }

    /// Keeps a liquidating market's index scale at or above its volatility scale after a
    /// mark update: raised to 1.25 × the scale when the scale passes it, lowered when the
    /// scale falls below half of it (so keys stay tight in calm markets), re-keying every
    /// holder of the market when it moves (O(holders), and rare: each move needs the
    /// scale to change by a quarter up or by more than a third down).
    pub(super) fn ratchet_key_scale(&mut self, m: usize) {
        let Some(r) = self.markets[m].book.cfg.risk else {
            return;
        };
        let (scale, key) = (self.markets[m].scale, self.markets[m].key_scale);
        let low = scale.saturating_mul(Rate::from_num(2)) < key;
        if scale <= key && !low {
            return;
        }
        let next = key_scale_for(&r, scale);
        if next == key {
            return;
        }
        self.markets[m].key_scale = next;
        // Every holder is re-keyed: the funding drift is forgotten with it.
        self.rebase_liquidation(m);
    }

    fn slot_for(&self, m: usize, size: i64, key: i64) -> Slot {
        self.markets[m]
            .trigger
            .as_ref()
            .expect("indexed")
            .slot(size > 0, key)
    }

    /// The pool of the account's position in slot `s` if that position may fail the
    /// requirement of `kind` at the mark; each account's cross pool is reported once
    /// (`cross_done`).
    pub(super) fn triggered_pool(
        &self,
        kind: Kind,
        a: AccountId,
        s: u32,
        cross_done: &mut bool,
    ) -> Option<PoolId> {
        let id = self.slot_market(s);
        let i = match kind {
            Kind::Maintenance => s,
            Kind::Initial => self.slots.pos[s as usize].extra,
        };
        if i == NIL || !self.may_trigger(kind, id.0 as usize, i as usize) {
            return None;
        }
        let pool = self.pool_of(a, id);
        if pool == PoolId::Cross {
            if *cross_done {
                return None;
            }
            *cross_done = true;
        }
        Some(pool)
    }

    /// Queues an account for the end-of-command checks: liquidation and order margin.
    pub(super) fn queue_check(&mut self, a: AccountId) {
        let acct = &mut self.accounts[a.0 as usize];
        if !acct.queued {
            acct.queued = true;
            self.to_check.push(a.0);
        }
        self.queue_im(a);
    }

    /// Queues an account for the end-of-command order-margin check only (its orders
    /// changed).
    pub(super) fn queue_im(&mut self, a: AccountId) {
        let acct = &mut self.accounts[a.0 as usize];
        if !acct.im_queued && self.order_margin_markets > 0 {
            acct.im_queued = true;
            self.im_check.push(a.0);
        }
    }

    /// True if the position linked at `i` (a slot for maintenance, an extra for initial
    /// margin) in market `m` may fail the requirement of `kind` at the mark.
    pub(super) fn may_trigger(&self, kind: Kind, m: usize, i: usize) -> bool {
        let mk = &self.markets[m];
        let (l, ix) = match kind {
            Kind::Maintenance => (&self.links[i], mk.trigger.as_ref()),
            Kind::Initial => (&self.im_links[i], mk.im_trigger.as_ref()),
        };
        let Some((long, short)) = ix.map(|ix| ix.query(mk.mark)) else {
            return false;
        };
        match l.slot() {
            Slot::None => false,
            Slot::Long(_) => long <= l.key,
            Slot::Short(_) => short >= l.key,
            Slot::Multi => true,
        }
    }

    /// Queues the holders that may have crossed a trigger after a mark move, for both
    /// requirements: the buckets firing below the mark's at or above it, those firing
    /// above at or below it, and the multi-market lists.
    pub(super) fn mark_moved(&mut self, m: usize) {
        if self.liquidating_markets == 0 || self.markets[m].trigger.is_none() {
            return;
        }
        let mark = self.markets[m].mark;
        let kinds = if self.order_margin_markets > 0 { 2 } else { 1 };
        for kind in [Kind::Maintenance, Kind::Initial].into_iter().take(kinds) {
            let ix = self.parts(kind, m).0;
            let (long, short) = ix.query(mark);
            let (at, short_at) = (ix.bucket(long) as usize, ix.bucket(short) as usize);
            let mut bucket = self.parts(kind, m).0.long_bits.next_at_or_after(at);
            while let Some(b) = bucket {
                let ix = self.parts(kind, m).0;
                let head = ix.long_head[b];
                bucket = ix.long_bits.next_at_or_after(b + 1);
                self.queue_list(kind, m, head);
            }
            let mut bucket = self.parts(kind, m).0.short_bits.prev_at_or_before(short_at);
            while let Some(b) = bucket {
                let ix = self.parts(kind, m).0;
                let head = ix.short_head[b];
                bucket = b
                    .checked_sub(1)
                    .and_then(|b| ix.short_bits.prev_at_or_before(b));
                self.queue_list(kind, m, head);
            }
            let multi = self.parts(kind, m).0.multi_head;
            self.queue_list(kind, m, multi);
        }
    }

    /// A funding payment of `delta` per lot by longs moved market `m`'s query points:
    /// rebases its indexes if a shift passed the reach, then queues what may trigger.
    /// O(log buckets + candidates), plus O(holders) on the rare rebase.
    pub(super) fn funding_moved(&mut self, m: usize, delta: i128) {
        // A market without liquidation keys nothing (its multi-market list, visited by
        // every query, holds the cross pools its funding can push down): no drift.
        if self.liquidation_config(MarketId(m as u32)).is_some() {
            let mk = &mut self.markets[m];
            if mk.trigger.as_mut().is_some_and(|ix| ix.add_drift(delta)) {
                self.rebase_liquidation(m);
            }
            let mk = &mut self.markets[m];
            if mk.im_trigger.as_mut().is_some_and(|ix| ix.add_drift(delta)) {
                self.rebase_orders(m);
            }
        }
        self.mark_moved(m);
    }

    /// Forgets market `m`'s funding drift in its liquidation index and re-keys every
    /// holder there: O(holders).
    fn rebase_liquidation(&mut self, m: usize) {
        self.markets[m].trigger.as_mut().expect("indexed").rebase();
        let mut h = self.first_holder(MarketId(m as u32));
        while h != NIL {
            let (a, next) = (self.slot_account(h), self.next_holder(h));
            self.rekey(a, self.pool_of(a, MarketId(m as u32)));
            h = next;
        }
    }

    /// Forgets market `m`'s funding drift in its order-margin index and queues every
    /// holder of the market for the end-of-command order-margin check, which re-keys it
    /// and checks it exactly (its stale key is not relied on in between). Every holder,
    /// not only the linked ones: a key out of reach is a bound only until the rebase.
    /// O(holders).
    fn rebase_orders(&mut self, m: usize) {
        self.markets[m]
            .im_trigger
            .as_mut()
            .expect("indexed")
            .rebase();
        let mut h = self.first_holder(MarketId(m as u32));
        while h != NIL {
            self.queue_im(self.slot_account(h));
            h = self.next_holder(h);
        }
    }

    /// Queues the accounts of the positions on one list that may trigger at the mark.
    fn queue_list(&mut self, kind: Kind, m: usize, mut i: u32) {
        while i != NIL {
            let next = match kind {
                Kind::Maintenance => self.links[i as usize].next,
                Kind::Initial => self.im_links[i as usize].next,
            };
            if self.may_trigger(kind, m, i as usize) {
                match kind {
                    Kind::Maintenance => self.queue_check(self.slot_account(i)),
                    Kind::Initial => self.queue_im(self.slot_account(self.extra_owner(i))),
                }
            }
            i = next;
        }
    }

    /// Distance to cascade: `(highest long trigger, lowest short trigger)` of a market —
    /// the marks at or beyond which the first single-market position could be liquidated
    /// (at the index scale, which bounds the current scale, so no earlier). `None` on a side with no indexed position.
    /// O(buckets holding only box keys + one bucket).
    pub fn nearest_triggers(&self, m: MarketId) -> Option<(Option<Price>, Option<Price>)> {
        let ix = self
            .markets
            .get(m.0 as usize)
            .filter(|s| s.book.cfg.risk.is_some_and(|r| r.liquidation.is_some()))?
            .trigger
            .as_ref()?;
        let n = ix.buckets();
        // Box keys of multi-market pools (no lots) are re-check points, not trigger
        // prices: skipped.
        // Keys are query points: the marks they fire at lie the funding shift away.
        let extreme = |head: u32, pick: fn(i64, i64) -> i64, long: bool| {
            let mut best: Option<i64> = None;
            let mut i = head;
            while i != NIL {
                let l = &self.links[i as usize];
                if l.lots() > 0 {
                    best = Some(best.map_or(l.key, |b| pick(b, l.key)));
                }
                i = l.next;
            }
            best.map(|k| Price(ix.fires_up_to(long, k).clamp(ix.lo, ix.hi)))
        };
        let mut long = None;
        let mut b = ix.long_bits.prev_at_or_before(n - 1);
        while let (None, Some(k)) = (long, b) {
            long = extreme(ix.long_head[k], i64::max, true);
            b = k
                .checked_sub(1)
                .and_then(|k| ix.long_bits.prev_at_or_before(k));
        }
        let mut short = None;
        let mut b = ix.short_bits.next_at_or_after(0);
        while let (None, Some(k)) = (short, b) {
            short = extreme(ix.short_head[k], i64::min, false);
            b = ix.short_bits.next_at_or_after(k + 1);
        }
        Some((long, short))
    }

    /// The liquidation heatmap of a market: `f(low price, high price, long lots, short
    /// lots)` for every bucket, ascending, where a position counts in the bucket of its
    /// trigger price at the index scale (the highest mark at which a long could be
    /// liquidated; the lowest for a short). Multi-market cross positions are not in it.
    /// O(buckets).
    pub fn liquidation_heatmap(&self, m: MarketId, f: impl FnMut(Price, Price, i64, i64)) {
        let Some(ix) = self
            .markets
            .get(m.0 as usize)
            .filter(|s| s.book.cfg.risk.is_some_and(|r| r.liquidation.is_some()))
            .and_then(|s| s.trigger.as_ref())
        else {
            return;
        };
        // Buckets beyond the band hold keys that no mark reaches at the current drift.
        let mut f = f;
        bucket_rows(
            (ix.base, ix.hi + ix.reach, ix.width),
            &ix.heat,
            |low, high, l, s| {
                if high.0 >= ix.lo && low.0 <= ix.hi {
                    f(Price(low.0.max(ix.lo)), Price(high.0.min(ix.hi)), l, s);
                }
            },
        );
    }

    /// Checks that a pool's box keys are a true bound: with every mark of its positions
    /// at the first price its key does not fire at now (funding drift included), the
    /// pool meets MM at the index scale. Vacuous when a key fires at every mark.
    fn verify_box(&self, a: AccountId, pool: PoolId) -> Result<(), String> {
        let mut total = self.pool_money(a, pool);
        let mut s = self.first_slot(a);
        while s != NIL {
            if self.in_pool_slot(s, pool) {
                let m = self.slot_market(s).0 as usize;
                let p = &self.slots.pos[s as usize];
                let ix = self.markets[m].trigger.as_ref().expect("indexed");
                let (lo, hi) = ix.band();
                let edge = ix.first_safe(p.size > 0, self.links[s as usize].key);
                if (p.size > 0 && edge > hi) || (p.size < 0 && edge < lo) {
                    return Ok(());
                }
                total += self.value_at_cap(m, p.size, p.cost, edge.clamp(lo, hi));
            }
            s = self.next_slot(s);
        }
        if total < 0 {
            return Err(format!(
                "account {} pool {pool:?}: box keys do not hold (short by {})",
                a.0, -total
            ));
        }
        Ok(())
    }

    /// Checks the index against a brute-force scan: every held position is linked once,
    /// in the right list, under a key that bounds its pool now (keys go stale as funding
    /// accrues; the drift in the query points keeps them bounds).
    pub(super) fn verify_triggers(&self) -> Result<(), String> {
        if self.liquidating_markets == 0 {
            return Ok(()); // nothing is indexed until a liquidating market exists
        }
        for (m, mk) in self.markets.iter().enumerate() {
            let Some(ix) = mk.trigger.as_ref() else {
                continue;
            };
            let r: &RiskConfig = mk
                .book
                .cfg
                .risk
                .as_ref()
                .expect("indexed markets are leveraged");
            if mk.key_scale < mk.scale || mk.key_scale > r.vol_cap {
                return Err(format!(
                    "market {m}: index scale {} outside [scale {}, cap]",
                    mk.key_scale, mk.scale
                ));
            }
            let linked = ix.verify_lists(&self.links, m, |i| self.holds(i, m))?;
            let mut expected = 0usize;
            // Pairs without a slot are flat, so unlinked: only holders can be expected.
            let mut h = self.first_holder(MarketId(m as u32));
            while h != NIL {
                let a = self.slot_account(h);
                let next = self.next_holder(h);
                let i = h as usize;
                let p = &self.slots.pos[i];
                let pool = if self.is_isolated(p) {
                    PoolId::Isolated(MarketId(m as u32))
                } else {
                    PoolId::Cross
                };
                let held = (0..self.markets.len())
                    .filter(|&k| {
                        let q = self.pos(a, MarketId(k as u32));
                        q.size != 0
                            && self.markets[k].book.cfg.risk.is_some()
                            && match pool {
                                PoolId::Cross => !self.is_isolated(q),
                                PoolId::Isolated(x) => x.0 as usize == k,
                            }
                    })
                    .count();
                let plain = (0..self.markets.len()).any(|k| {
                    let q = self.pos(a, MarketId(k as u32));
                    q.size != 0
                        && self.markets[k]
                            .book
                            .cfg
                            .risk
                            .is_some_and(|r| r.liquidation.is_none())
                        && match pool {
                            PoolId::Cross => !self.is_isolated(q),
                            PoolId::Isolated(x) => x.0 as usize == k,
                        }
                });
                let boxed =
                    p.size != 0 && held > 1 && !plain && self.links[i].slot() != Slot::Multi;
                if boxed {
                    // A box key: no lots, in the bucket of its key, and the box holds.
                    let l = &self.links[i];
                    if l.lots() != 0 || l.slot() != self.slot_for(m, p.size, l.key) {
                        return Err(format!(
                            "market {m} account {}: box key {} linked {:?}",
                            a.0,
                            l.key,
                            l.slot()
                        ));
                    }
                    self.verify_box(a, pool)?;
                    expected += usize::from(l.slot() != Slot::None);
                    h = next;
                    continue;
                }
                let single = p.size != 0 && held == 1 && r.liquidation.is_some();
                let l = &self.links[i];
                // A single key may be stale (funding accrued since, drift included in
                // the query point): only its side and bucket are fixed; the bound below
                // is what must hold.
                let placed = if single {
                    l.slot() == Slot::None || l.slot() == self.slot_for(m, p.size, l.key)
                } else {
                    l.slot()
                        == if p.size != 0 && held > 1 {
                            Slot::Multi
                        } else {
                            Slot::None
                        }
                };
                let lots_ok = l.slot() == Slot::None || l.lots() == heat_lots(p.size.abs());
                if !placed || !lots_ok {
                    return Err(format!(
                        "market {m} account {}: linked {:?} with key {}",
                        a.0,
                        l.slot(),
                        l.key
                    ));
                }
                // The key is a true bound: at the first mark it does not fire at now (or
                // anywhere in the band, if the position is not indexed), at the highest
                // scale, the pool is at or above MM. Equity − MM is monotone in the mark,
                // so this covers every mark past the key and every scale up to the cap.
                if single {
                    let beyond = match (l.slot(), p.size > 0) {
                        (Slot::None, true) => ix.lo,
                        (Slot::None, false) => ix.hi,
                        (_, true) => ix.first_safe(true, l.key).max(ix.lo),
                        (_, false) => ix.first_safe(false, l.key).min(ix.hi),
                    };
                    if (ix.lo..=ix.hi).contains(&beyond) {
                        let size = i128::from(p.size);
                        let equity = self.pool_money(a, pool) + size * i128::from(beyond) - p.cost;
                        let mm = mul_rate_up(
                            r.maintenance_base(size.abs() * i128::from(beyond)),
                            mk.key_scale,
                        );
                        if equity < mm {
                            return Err(format!(
                                "market {m} account {}: below MM at {beyond}, past its key {}",
                                a.0, l.key
                            ));
                        }
                    }
                }
                expected += usize::from(l.slot() != Slot::None);
                h = next;
            }
            if expected != linked {
                return Err(format!("market {m}: {linked} linked, {expected} expected"));
            }
        }
        Ok(())
    }
}
