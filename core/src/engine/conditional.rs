//! Conditional orders: stop and take-profit orders that wait off the book until the
//! mark reaches their trigger, then become ordinary new orders (margin is checked then).
//!
//! Storage: a slot arena of capacity `max_conditionals` with a free list; each account keeps
//! its conditionals in a list in ascending id (ids grow with placement); each leveraged
//! market keeps two bucket indexes over its price band (the trigger index's bucket
//! width): one for orders that fire when the mark rises to them, one for those that fire
//! when it falls, with a hierarchical bitmap of non-empty buckets and the quantity per
//! bucket and side (the stop heatmap).
//!
//! Invariants (checked by [`Engine::verify`]): every live slot is linked exactly once
//! into its account's list and into the list of the bucket of its trigger in its
//! market's index of its direction; bitmaps mark exactly the non-empty buckets; the
//! heat per bucket equals the quantity linked there; no conditional in a market that is
//! not halted fires at that market's mark. So after a mark move only the orders between
//! the old and the new mark can fire: the walk from the new mark's bucket toward the
//! old one visits the buckets wholly passed (every order fires) and one boundary bucket.

use super::{Engine, Out};
use crate::book::bitmap::Bitmap;
use crate::command::ConditionalOrder;
use crate::event::{CancelReason, EventKind, EventSink, RejectReason};
use crate::market::MarketConfig;
use crate::pool::NIL;
use crate::types::{AccountId, MarketId, OrderId, Price, Side};

/// Most buckets of one market's conditional index.
const MAX_BUCKETS: usize = 4096;

/// One waiting conditional order and its links.
#[derive(Clone, Copy, Debug)]
struct Slot {
    id: OrderId,
    order: ConditionalOrder,
    bucket: u32,
    /// Bucket list (or the free list while free).
    next: u32,
    prev: u32,
    /// The owner's list.
    acct_next: u32,
    acct_prev: u32,
}

/// One direction of one market's index.
#[derive(Clone, Debug)]
struct Side2 {
    head: Vec<u32>,
    bits: Bitmap,
}

/// One leveraged market's conditional index.
#[derive(Clone, Debug)]
struct StopIndex {
    lo: i64,
    hi: i64,
    width: i64,
    /// Orders that fire when the mark rises to them (buy stops, sell take-profits).
    rising: Side2,
    /// Orders that fire when the mark falls to them (sell stops, buy take-profits).
    falling: Side2,
    /// Quantity per bucket: buys, then sells.
    heat: Vec<i64>,
}

impl StopIndex {
    fn new(cfg: &MarketConfig) -> StopIndex {
        let levels = cfg.levels();
        let n = levels.clamp(1, MAX_BUCKETS);
        let width = levels.div_ceil(n) as i64 * cfg.tick;
        let n = ((cfg.max_price.0 - cfg.min_price.0) / width + 1) as usize;
        let side = || Side2 {
            head: vec![NIL; n],
            bits: Bitmap::new(n),
        };
        StopIndex {
            lo: cfg.min_price.0,
            hi: cfg.max_price.0,
            width,
            rising: side(),
            falling: side(),
            heat: vec![0; 2 * n],
        }
    }

    fn bucket(&self, price: i64) -> u32 {
        ((price.clamp(self.lo, self.hi) - self.lo) / self.width) as u32
    }

    fn buckets(&self) -> usize {
        self.rising.head.len()
    }

    fn dir(&mut self, rising: bool) -> &mut Side2 {
        if rising {
            &mut self.rising
        } else {
            &mut self.falling
        }
    }
}

/// Every conditional order of the engine.
#[derive(Clone, Debug, Default)]
pub(super) struct Conditionals {
    slots: Vec<Slot>,
    /// Head of the free list (through `next`).
    free: u32,
    live: u32,
    /// Per account: (head, tail, count) of its list.
    accounts: Vec<(u32, u32, u32)>,
    /// Per market: its index (`None` for plain markets).
    markets: Vec<Option<StopIndex>>,
    /// Scratch: the slots firing in the current command.
    fired: Vec<u32>,
}

impl Conditionals {
    /// First conditional of account `a`'s list, `NIL` if none.
    pub(super) fn account_head(&self, a: usize) -> u32 {
        self.accounts.get(a).map_or(NIL, |l| l.0)
    }

    /// Hands `f` each waiting conditional of account `a`, in placement order, as its id
    /// followed by its `NewConditional` encoding (for the state hash).
    pub(super) fn digest_account(&self, a: usize, mut f: impl FnMut(&[u8])) {
        let mut s = self.accounts.get(a).map_or(NIL, |l| l.0);
        let mut buf = Vec::new();
        while s != NIL {
            let slot = &self.slots[s as usize];
            buf.clear();
            buf.extend_from_slice(&slot.id.0.to_le_bytes());
            crate::command::Command {
                seq: 0,
                ts_ns: 0,
                kind: crate::command::CommandKind::NewConditional(slot.order),
            }
            .encode(&mut buf);
            f(&buf);
            s = slot.acct_next;
        }
    }

    /// Allocates the arena (`capacity` slots) and the per-account lists once, at the first
    /// leveraged market.
    fn allocate(&mut self, capacity: u32, accounts: u32) {
        if !self.accounts.is_empty() {
            return;
        }
        self.accounts = vec![(NIL, NIL, 0); accounts as usize];
        let blank = Slot {
            id: OrderId(0),
            order: ConditionalOrder {
                account: AccountId(0),
                market: MarketId(0),
                client_id: crate::types::ClientOrderId(0),
                side: Side::Buy,
                qty: crate::types::Qty(0),
                trigger: Price(0),
                kind: crate::command::ConditionalKind::Stop,
                limit: None,
                reduce_only: false,
                stp: crate::command::StpMode::CancelResting,
            },
            bucket: 0,
            next: NIL,
            prev: NIL,
            acct_next: NIL,
            acct_prev: NIL,
        };
        self.slots = vec![blank; capacity as usize];
        for (i, s) in self.slots.iter_mut().enumerate() {
            s.next = if i + 1 < capacity as usize {
                i as u32 + 1
            } else {
                NIL
            };
        }
        self.free = if capacity == 0 { NIL } else { 0 };
        self.fired.reserve(capacity as usize);
    }

    /// Links a new slot into its bucket and its account's list.
    pub(super) fn insert(&mut self, id: OrderId, order: ConditionalOrder) -> u32 {
        let s = self.free;
        self.free = self.slots[s as usize].next;
        self.live += 1;
        let ix = self.markets[order.market.0 as usize]
            .as_mut()
            .expect("leveraged market");
        let b = ix.bucket(order.trigger.0);
        let heat = b as usize
            + if order.side == Side::Buy {
                0
            } else {
                ix.buckets()
            };
        ix.heat[heat] += order.qty.0;
        let dir = ix.dir(order.fires_rising());
        let old = dir.head[b as usize];
        dir.head[b as usize] = s;
        dir.bits.set(b as usize);
        let (head, tail, count) = &mut self.accounts[order.account.0 as usize];
        let prev_tail = *tail;
        if *head == NIL {
            *head = s;
        }
        *tail = s;
        *count += 1;
        if old != NIL {
            self.slots[old as usize].prev = s;
        }
        if prev_tail != NIL {
            self.slots[prev_tail as usize].acct_next = s;
        }
        self.slots[s as usize] = Slot {
            id,
            order,
            bucket: b,
            next: old,
            prev: NIL,
            acct_next: NIL,
            acct_prev: prev_tail,
        };
        s
    }

    /// Unlinks slot `s` from its bucket and its account's list and frees it.
    fn remove(&mut self, s: u32) {
        let slot = self.slots[s as usize];
        let o = slot.order;
        let ix = self.markets[o.market.0 as usize]
            .as_mut()
            .expect("leveraged market");
        let heat = slot.bucket as usize + if o.side == Side::Buy { 0 } else { ix.buckets() };
        ix.heat[heat] -= o.qty.0;
        let dir = ix.dir(o.fires_rising());
        if slot.prev == NIL {
            dir.head[slot.bucket as usize] = slot.next;
            if slot.next == NIL {
                dir.bits.clear(slot.bucket as usize);
            }
        } else {
            self.slots[slot.prev as usize].next = slot.next;
        }
        if slot.next != NIL {
            self.slots[slot.next as usize].prev = slot.prev;
        }
        let (head, tail, count) = &mut self.accounts[o.account.0 as usize];
        if slot.acct_prev == NIL {
            *head = slot.acct_next;
        } else {
            self.slots[slot.acct_prev as usize].acct_next = slot.acct_next;
        }
        if slot.acct_next == NIL {
            *tail = slot.acct_prev;
        } else {
            self.slots[slot.acct_next as usize].acct_prev = slot.acct_prev;
        }
        *count -= 1;
        self.slots[s as usize].next = self.free;
        self.free = s;
        self.live -= 1;
    }

    /// Pushes onto `fired` the slots of market `m` that fire at `mark`.
    fn collect_fired(&mut self, m: usize, mark: i64) {
        let Some(ix) = self.markets[m].as_ref() else {
            return;
        };
        let at = ix.bucket(mark) as usize;
        // Rising orders fire at triggers ≤ mark: the buckets at and below the mark's.
        let mut b = ix.rising.bits.prev_at_or_before(at);
        while let Some(k) = b {
            let mut s = ix.rising.head[k];
            while s != NIL {
                if self.slots[s as usize].order.fires_at(mark) {
                    self.fired.push(s);
                }
                s = self.slots[s as usize].next;
            }
            b = k
                .checked_sub(1)
                .and_then(|k| ix.rising.bits.prev_at_or_before(k));
        }
        // Falling orders fire at triggers ≥ mark: the buckets at and above the mark's.
        let mut b = ix.falling.bits.next_at_or_after(at);
        while let Some(k) = b {
            let mut s = ix.falling.head[k];
            while s != NIL {
                if self.slots[s as usize].order.fires_at(mark) {
                    self.fired.push(s);
                }
                s = self.slots[s as usize].next;
            }
            b = ix.falling.bits.next_at_or_after(k + 1);
        }
    }

    /// The slot of the account's conditional `id`, if it has one.
    fn find(&self, a: AccountId, id: OrderId) -> Option<u32> {
        let mut s = self.accounts.get(a.0 as usize)?.0;
        while s != NIL {
            if self.slots[s as usize].id == id {
                return Some(s);
            }
            s = self.slots[s as usize].acct_next;
        }
        None
    }
}

impl Engine {
    /// Adds market `m`'s conditional index (leveraged markets only).
    pub(super) fn add_conditional_market(&mut self, cfg: &MarketConfig) {
        let index = cfg.risk.is_some().then(|| StopIndex::new(cfg));
        if index.is_some() {
            self.conditionals
                .allocate(self.cfg.max_conditionals, self.cfg.max_accounts);
        }
        self.conditionals.markets.push(index);
    }

    /// `NewConditional`: validates and stores a conditional order.
    pub(super) fn new_conditional<S: EventSink>(
        &mut self,
        o: &ConditionalOrder,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        let market = self.market(o.market)?;
        self.check_account(o.account)?;
        market.book.cfg.risk.ok_or(RejectReason::NotLeveraged)?;
        if market.halted {
            return Err(RejectReason::MarketHalted);
        }
        Self::check_qty_price(&market.book.cfg, o.qty, Some(o.trigger))?;
        if let Some(limit) = o.limit {
            Self::check_qty_price(&market.book.cfg, o.qty, Some(limit))?;
        }
        if market.mark == 0 {
            return Err(RejectReason::NoMarkPrice);
        }
        if o.fires_at(market.mark) {
            return Err(RejectReason::WouldTriggerNow);
        }
        let c = &self.conditionals;
        if c.live as usize >= c.slots.len() {
            return Err(RejectReason::ConditionalCapacity);
        }
        if c.accounts[o.account.0 as usize].2 >= self.cfg.max_orders_per_account {
            return Err(RejectReason::AccountOrderCapacity);
        }
        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        self.conditionals.insert(id, *o);
        out.emit(EventKind::ConditionalAccepted {
            order_id: id,
            account: o.account,
            market: o.market,
            side: o.side,
            trigger: o.trigger,
            qty: o.qty,
        });
        Ok(())
    }

    /// True if a restored conditional order fits: a leveraged market with room, a valid
    /// account, quantity and prices as `NewConditional` requires them (snapshots).
    pub(super) fn conditional_fits(&self, o: &ConditionalOrder) -> bool {
        let Ok(market) = self.market(o.market) else {
            return false;
        };
        let c = &self.conditionals;
        market.book.cfg.risk.is_some()
            && self.check_account(o.account).is_ok()
            && Self::check_qty_price(&market.book.cfg, o.qty, Some(o.trigger)).is_ok()
            && o.limit
                .is_none_or(|l| Self::check_qty_price(&market.book.cfg, o.qty, Some(l)).is_ok())
            && (c.live as usize) < c.slots.len()
            && c.accounts[o.account.0 as usize].2 < self.cfg.max_orders_per_account
    }

    /// `CancelConditional`.
    pub(super) fn cancel_conditional<S: EventSink>(
        &mut self,
        a: AccountId,
        id: OrderId,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        self.check_account(a)?;
        let s = self
            .conditionals
            .find(a, id)
            .ok_or(RejectReason::UnknownOrder)?;
        self.drop_conditional(s, CancelReason::User, out);
        Ok(())
    }

    fn drop_conditional<S: EventSink>(&mut self, s: u32, reason: CancelReason, out: &mut Out<S>) {
        let slot = self.conditionals.slots[s as usize];
        self.conditionals.remove(s);
        out.emit(EventKind::ConditionalCancelled {
            order_id: slot.id,
            account: slot.order.account,
            reason,
        });
    }

    /// Cancels the account's conditionals for which `pick(market)` holds, in ascending id.
    pub(super) fn cancel_conditionals_where<S: EventSink>(
        &mut self,
        a: AccountId,
        reason: CancelReason,
        pick: impl Fn(&Engine, MarketId) -> bool,
        out: &mut Out<S>,
    ) {
        let Some(&(head, _, _)) = self.conditionals.accounts.get(a.0 as usize) else {
            return;
        };
        let mut s = head;
        while s != NIL {
            let slot = self.conditionals.slots[s as usize];
            if pick(self, slot.order.market) {
                self.drop_conditional(s, reason, out);
            }
            s = slot.acct_next;
        }
    }

    /// Fires every conditional of market `m` whose condition holds at its mark, in
    /// ascending id, each submitted as a new order (unless the market is halted).
    pub(super) fn fire_conditionals<S: EventSink>(&mut self, m: MarketId, out: &mut Out<S>) {
        let mk = &self.markets[m.0 as usize];
        if mk.halted || self.conditionals.live == 0 {
            return;
        }
        self.conditionals.fired.clear();
        self.conditionals.collect_fired(m.0 as usize, mk.mark);
        let slots = &self.conditionals.slots;
        self.conditionals
            .fired
            .sort_unstable_by_key(|&s| slots[s as usize].id);
        for k in 0..self.conditionals.fired.len() {
            let s = self.conditionals.fired[k];
            let slot = self.conditionals.slots[s as usize];
            self.conditionals.remove(s);
            out.emit(EventKind::ConditionalTriggered {
                order_id: slot.id,
                account: slot.order.account,
                market: m,
            });
            if let Err(reason) = self.new_order(&slot.order.to_order(), out) {
                out.emit(EventKind::ConditionalRejected {
                    order_id: slot.id,
                    reason,
                });
            }
        }
    }

    // ---- queries -------------------------------------------------------------------

    /// Waiting conditional orders.
    pub fn conditional_orders(&self) -> usize {
        self.conditionals.live as usize
    }

    /// The stop heatmap: for each bucket of trigger prices of market `m`, lowest first,
    /// `f(low, high, buy lots, sell lots)` of the waiting conditional orders (O(buckets)).
    pub fn stop_heatmap(&self, m: MarketId, f: impl FnMut(Price, Price, i64, i64)) {
        let Some(Some(ix)) = self.conditionals.markets.get(m.0 as usize) else {
            return;
        };
        super::trigger::bucket_rows((ix.lo, ix.hi, ix.width), &ix.heat, f);
    }

    /// Checks the module invariants by brute force.
    pub(super) fn verify_conditionals(&self) -> Result<(), String> {
        let c = &self.conditionals;
        let mut seen = vec![false; c.slots.len()];
        let mut listed = 0u32;
        for (a, &(head, tail, count)) in c.accounts.iter().enumerate() {
            let (mut prev, mut s, mut n, mut last_id) = (NIL, head, 0, 0);
            while s != NIL {
                let slot = &c.slots[s as usize];
                if slot.order.account.0 as usize != a || slot.acct_prev != prev {
                    return Err(format!("conditional list of account {a} broken at {s}"));
                }
                if slot.id.0 <= last_id || std::mem::replace(&mut seen[s as usize], true) {
                    return Err(format!("conditional {:?} out of order or twice", slot.id));
                }
                last_id = slot.id.0;
                (prev, s, n) = (s, slot.acct_next, n + 1);
            }
            if prev != tail || n != count {
                return Err(format!("account {a}: conditional tail or count wrong"));
            }
            listed += n;
        }
        if listed != c.live {
            return Err(format!("{listed} conditionals listed, {} live", c.live));
        }
        let mut indexed = vec![false; c.slots.len()];
        for (m, ix) in c.markets.iter().enumerate() {
            let Some(ix) = ix else { continue };
            let n = ix.buckets();
            let mut heat = vec![0i64; 2 * n];
            for (rising, dir) in [(true, &ix.rising), (false, &ix.falling)] {
                for b in 0..n {
                    let (mut prev, mut s) = (NIL, dir.head[b]);
                    if dir.bits.get(b) != (s != NIL) {
                        return Err(format!("market {m}: conditional bitmap wrong at {b}"));
                    }
                    while s != NIL {
                        let slot = &c.slots[s as usize];
                        let o = &slot.order;
                        if o.market.0 as usize != m
                            || o.fires_rising() != rising
                            || ix.bucket(o.trigger.0) as usize != b
                            || slot.bucket as usize != b
                            || slot.prev != prev
                            || !seen[s as usize]
                            || std::mem::replace(&mut indexed[s as usize], true)
                        {
                            return Err(format!("conditional {:?} indexed wrong", slot.id));
                        }
                        let mk = &self.markets[m];
                        if !mk.halted && o.fires_at(mk.mark) {
                            return Err(format!("conditional {:?} fires at the mark", slot.id));
                        }
                        heat[b + if o.side == Side::Buy { 0 } else { n }] += o.qty.0;
                        (prev, s) = (s, slot.next);
                    }
                }
            }
            if heat != ix.heat {
                return Err(format!("market {m}: stop heatmap wrong"));
            }
        }
        if indexed != seen {
            return Err("a conditional is listed but not indexed".into());
        }
        Ok(())
    }
}
