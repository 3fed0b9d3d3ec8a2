//! Snapshots: the engine's state as bytes ([`Engine::snapshot`]) and back
//! ([`Engine::restore`]), in a canonical form, so restore → snapshot gives the same
//! bytes and a restored engine emits the same events as the original for any
//! continuation.
//!
//! What is written is what the state hash covers (`state_hash.rs`), plus the capacities,
//! the last applied sequence, each account's client-id watermark and each market's index
//! scale; everything else (trigger indexes, hash tables, free lists, slot numbers) is
//! rebuilt on restore, the trigger indexes with no funding drift, keyed afresh from the
//! restored pools. That changes when a later rebase happens, never an event: indexes
//! only nominate candidates, which are checked exactly and processed in sorted order.
//!
//! Layout (little-endian, `codec` widths): magic `CASCSNAP`, version `u16`; the eight
//! `EngineConfig` fields as `u64`; last sequence, next order id; fee ledger, funding
//! dust, insurance cash, bad debt (`i128`); the market count, then per market its
//! `AddMarket` command encoding (length `u32` first), halt flag, mark, EWMA, scale and
//! index scale bits, open interest, backing, fund size, cost and cash, the funding index,
//! its low and high, its ledger, and per side (bids, asks) the resting order ids in
//! priority order (count first); then the accounts that hold anything (count first),
//! each as id, open flag, collateral, client-id watermark, its resting orders in
//! acceptance order (id, client id, market, side, price, quantity, self-trade mode,
//! post-only and reduce-only flags), its positions in market order (market, size, cost,
//! leverage, funding snapshot, isolated flag, bucket, resting buy and sell quantity) and
//! its conditional orders in placement order (id, then the `NewConditional` encoding,
//! length first).
//!
//! Restore checks structure as it reads (ids in range, prices in the band, each order
//! queued once, capacities, no duplicate ids or client ids, nothing cut short or left
//! over) and refuses what does not fit with a [`SnapshotError`]. It trusts amounts
//! (balances, costs, the funding index) and capacities (allocated as written): a
//! damaged amount can break an invariant or overflow later, a damaged capacity can ask
//! for more memory than the machine has. So a snapshot must travel in a container that
//! checksums it, as the gateway's snapshot files do, and be restored only when the
//! checksum holds.

use super::{Engine, EngineConfig, Out};
use crate::codec::{DecodeError, Reader, Writer};
use crate::command::{Command, CommandKind};
use crate::event::{Event, EventSink};
use crate::pool::{Order, NIL};
use crate::risk::Rate;
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty, Side};

/// Identifies a snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"CASCSNAP";
/// Layout version of [`Engine::snapshot`].
pub const SNAPSHOT_VERSION: u16 = 1;

/// Why bytes are not a snapshot this build can restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The bytes end early or hold a value out of range.
    Decode(DecodeError),
    /// No snapshot magic.
    NotASnapshot,
    /// Written by another layout version.
    Version(u16),
    /// The capacities cannot build an engine.
    Config(super::ConfigError),
    /// A value does not fit the state it belongs to (what, and which).
    Invalid(String),
}

impl From<DecodeError> for SnapshotError {
    fn from(e: DecodeError) -> Self {
        SnapshotError::Decode(e)
    }
}

fn invalid<T>(what: impl Into<String>) -> Result<T, SnapshotError> {
    Err(SnapshotError::Invalid(what.into()))
}

/// Drops events (restore re-adds markets through the command path).
struct Discard;

impl EventSink for Discard {
    fn emit(&mut self, _: Event) {}
}

impl Engine {
    /// The sequence of the last command applied (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Appends the snapshot (module docs) to `out`. O(accounts + orders + positions).
    pub fn snapshot(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        for b in SNAPSHOT_MAGIC {
            w.u8(b);
        }
        w.u8(SNAPSHOT_VERSION as u8)
            .u8((SNAPSHOT_VERSION >> 8) as u8);
        for v in self.cfg.to_words() {
            w.u64(v);
        }
        w.u64(self.last_seq).u64(self.next_order_id);
        for v in [
            self.fee_ledger,
            self.funding_dust,
            self.insurance,
            self.bad_debt,
        ] {
            w.i128(v);
        }
        w.u32(self.markets.len() as u32);
        for m in 0..self.markets.len() {
            self.snapshot_market(m, &mut w);
        }
        let held: Vec<usize> = (0..self.accounts.len())
            .filter(|&a| self.holds_anything(a))
            .collect();
        w.u32(held.len() as u32);
        for a in held {
            self.snapshot_account(a, &mut w);
        }
    }

    fn holds_anything(&self, a: usize) -> bool {
        let acct = &self.accounts[a];
        acct.open
            || acct.collateral != 0
            || acct.head != NIL
            || acct.positions != NIL
            || acct.client_id_high != 0
            || self.conditionals.account_head(a) != NIL
    }

    fn snapshot_market(&self, m: usize, w: &mut Writer) {
        let mk = &self.markets[m];
        let cfg = market_config_bytes(&mk.book.cfg);
        w.u32(cfg.len() as u32);
        w.0.extend_from_slice(&cfg);
        w.bool(mk.halted)
            .i64(mk.mark)
            .i64(mk.ewma.to_bits())
            .i64(mk.scale.to_bits())
            .i64(mk.key_scale.to_bits())
            .i64(mk.oi);
        w.i128(mk.backing);
        w.i64(mk.fund_size);
        w.i128(mk.fund_cost);
        w.i128(mk.fund_cash);
        for v in mk.funding.digest() {
            w.i128(v);
        }
        for side in [Side::Buy, Side::Sell] {
            let mut ids = Vec::new();
            let mut level = mk.book.best(side);
            while let Some(i) = level {
                let mut s = mk.book.level(i).head;
                while s != NIL {
                    ids.push(self.pool[s].id.0);
                    s = self.pool[s].next;
                }
                level = mk.book.next_worse(side, i);
            }
            w.u32(ids.len() as u32);
            for id in ids {
                w.u64(id);
            }
        }
    }

    fn snapshot_account(&self, a: usize, w: &mut Writer) {
        let acct = &self.accounts[a];
        w.u32(a as u32).bool(acct.open);
        w.i128(acct.collateral);
        w.u64(acct.client_id_high).u32(acct.orders);
        let mut s = acct.head;
        while s != NIL {
            let o = &self.pool[s];
            w.u64(o.id.0)
                .u64(o.client_id.0)
                .u32(o.market.0)
                .side(o.side)
                .i64(o.price.0)
                .i64(o.qty.0)
                .stp(o.stp)
                .bool(o.post_only)
                .bool(o.reduce_only);
            s = o.acct_next;
        }
        let mut n = 0u32;
        let mut s = acct.positions;
        while s != NIL {
            n += 1;
            s = self.next_slot(s);
        }
        w.u32(n);
        let mut s = acct.positions;
        while s != NIL {
            let p = &self.slots.pos[s as usize];
            let x = self.extra_of(p);
            w.u32(self.slot_market(s).0).i64(p.size);
            w.i128(p.cost);
            w.u32(p.leverage);
            w.i128(p.funding);
            w.bool(x.isolated);
            w.i128(x.bucket);
            w.i64(x.buy_open).i64(x.sell_open);
            s = self.next_slot(s);
        }
        let mut conds = Vec::new();
        self.conditionals
            .digest_account(a, |bytes| conds.push(bytes.to_vec()));
        w.u32(conds.len() as u32);
        for c in conds {
            // The state hash's form: the id, then the `NewConditional` encoding.
            w.0.extend_from_slice(&c[..8]);
            w.u32(c.len() as u32 - 8);
            w.0.extend_from_slice(&c[8..]);
        }
    }

    /// The engine a snapshot describes (module docs), or why the bytes are not one.
    pub fn restore(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        let mut r = Reader::new(bytes);
        let mut magic = [0u8; 8];
        for b in &mut magic {
            *b = r.u8()?;
        }
        if magic != SNAPSHOT_MAGIC {
            return Err(SnapshotError::NotASnapshot);
        }
        let version = u16::from(r.u8()?) | u16::from(r.u8()?) << 8;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(version));
        }
        let mut words = [0u64; 8];
        for v in &mut words {
            *v = r.u64()?;
        }
        let cfg = EngineConfig::from_words(words).map_err(|i| {
            SnapshotError::Invalid(format!("{} above u32", EngineConfig::FIELDS[i]))
        })?;
        let mut e = Engine::try_new(cfg).map_err(SnapshotError::Config)?;
        e.last_seq = r.u64()?;
        e.next_order_id = r.u64()?;
        e.fee_ledger = r.i128()?;
        e.funding_dust = r.i128()?;
        e.insurance = r.i128()?;
        e.bad_debt = r.i128()?;
        let markets = r.u32()? as usize;
        if markets > cfg.max_markets as usize {
            return invalid("more markets than max_markets");
        }
        let mut queues = Vec::with_capacity(markets);
        for _ in 0..markets {
            queues.push(e.restore_market(&mut r)?);
        }
        let accounts = r.u32()?;
        let mut last = None;
        for _ in 0..accounts {
            let a = r.u32()?;
            if a >= cfg.max_accounts || last.is_some_and(|l| l >= a) {
                return invalid(format!("account {a} out of range or out of order"));
            }
            last = Some(a);
            e.restore_account(AccountId(a), &mut r)?;
        }
        r.finish()?;
        e.queue_orders(&queues)?;
        e.rebuild_indexes();
        Ok(e)
    }

    /// Adds a market from its snapshot; returns its queues (bids, asks) of order ids.
    fn restore_market(&mut self, r: &mut Reader) -> Result<[Vec<u64>; 2], SnapshotError> {
        let len = r.u32()? as usize;
        let start = r.offset();
        let mut cfg_bytes = Vec::with_capacity(len.min(1 << 10));
        for _ in 0..len {
            cfg_bytes.push(r.u8()?);
        }
        let Ok(Command {
            kind: CommandKind::AddMarket(cfg),
            ..
        }) = Command::decode(&cfg_bytes)
        else {
            return invalid(format!("market config at byte {start} does not decode"));
        };
        let mut out = Out {
            sink: &mut Discard,
            seq: 0,
            index: 0,
        };
        self.add_market(&cfg, &mut out)
            .map_err(|e| SnapshotError::Invalid(format!("market config refused: {e:?}")))?;
        let mk = self.markets.last_mut().expect("just added");
        mk.halted = r.bool()?;
        mk.mark = r.i64()?;
        mk.ewma = Rate::from_bits(r.i64()?);
        mk.scale = Rate::from_bits(r.i64()?);
        mk.key_scale = Rate::from_bits(r.i64()?);
        mk.oi = r.i64()?;
        mk.backing = r.i128()?;
        mk.fund_size = r.i64()?;
        mk.fund_cost = r.i128()?;
        mk.fund_cash = r.i128()?;
        let mut f = [0i128; 4];
        for v in &mut f {
            *v = r.i128()?;
        }
        mk.funding = super::funding::FundingState::from_parts(f);
        if mk.fund_size != 0 {
            self.fund_positions += 1;
        }
        let mut queues = [Vec::new(), Vec::new()];
        for q in &mut queues {
            let n = r.u32()? as usize;
            if n > self.cfg.max_orders as usize {
                return invalid("a queue longer than max_orders");
            }
            for _ in 0..n {
                q.push(r.u64()?);
            }
        }
        Ok(queues)
    }

    fn restore_account(&mut self, a: AccountId, r: &mut Reader) -> Result<(), SnapshotError> {
        let acct = &mut self.accounts[a.0 as usize];
        acct.open = r.bool()?;
        acct.collateral = r.i128()?;
        acct.client_id_high = r.u64()?;
        let orders = r.u32()?;
        for _ in 0..orders {
            self.restore_order(a, r)?;
        }
        let positions = r.u32()?;
        let mut last = None;
        for _ in 0..positions {
            let m = r.u32()?;
            if last.is_some_and(|l| l >= m) || self.risk_of_checked(m).is_none() {
                return invalid(format!("account {}: position in market {m}", a.0));
            }
            last = Some(m);
            self.restore_position(a, MarketId(m), r)?;
        }
        self.check_open_quantities(a)?;
        let conditionals = r.u32()?;
        let mut last_id = None;
        for _ in 0..conditionals {
            let id = OrderId(r.u64()?);
            if last_id.is_some_and(|l| l >= id.0) {
                return invalid(format!("account {}: conditional ids not ascending", a.0));
            }
            last_id = Some(id.0);
            let len = r.u32()? as usize;
            let mut bytes = Vec::with_capacity(len.min(1 << 10));
            for _ in 0..len {
                bytes.push(r.u8()?);
            }
            let Ok(Command {
                kind: CommandKind::NewConditional(c),
                ..
            }) = Command::decode(&bytes)
            else {
                return invalid(format!(
                    "account {}: conditional {} does not decode",
                    a.0, id.0
                ));
            };
            if c.account != a || !self.conditional_fits(&c) || id.0 >= self.next_order_id {
                return invalid(format!(
                    "account {}: conditional {} does not fit",
                    a.0, id.0
                ));
            }
            self.conditionals.insert(id, c);
        }
        Ok(())
    }

    /// Refuses an account whose positions' resting quantities differ from its restored
    /// orders in leveraged markets (every such order's pair must hold a slot saying so).
    fn check_open_quantities(&self, a: AccountId) -> Result<(), SnapshotError> {
        let mut sums: Vec<(u32, i64, i64)> = Vec::new();
        let mut s = self.accounts[a.0 as usize].head;
        while s != NIL {
            let o = &self.pool[s];
            s = o.acct_next;
            if self.risk_of_checked(o.market.0).is_none() {
                continue;
            }
            let i = sums
                .iter()
                .position(|x| x.0 == o.market.0)
                .unwrap_or_else(|| {
                    sums.push((o.market.0, 0, 0));
                    sums.len() - 1
                });
            let side = if o.side == Side::Buy {
                &mut sums[i].1
            } else {
                &mut sums[i].2
            };
            *side = side.saturating_add(o.qty.0);
        }
        let mut s = self.first_slot(a);
        while s != NIL {
            let m = self.slot_market(s).0;
            let x = self.extra_of(&self.slots.pos[s as usize]);
            let expected = sums
                .iter()
                .find(|e| e.0 == m)
                .map_or((0, 0), |e| (e.1, e.2));
            if (x.buy_open, x.sell_open) != expected {
                return invalid(format!("account {}: resting quantities in market {m}", a.0));
            }
            s = self.next_slot(s);
        }
        if sums
            .iter()
            .any(|e| self.slot_of(a, MarketId(e.0)).is_none())
        {
            return invalid(format!(
                "account {}: orders without their position record",
                a.0
            ));
        }
        Ok(())
    }

    fn risk_of_checked(&self, m: u32) -> Option<&crate::risk::RiskConfig> {
        self.markets.get(m as usize)?.book.cfg.risk.as_ref()
    }

    /// One resting order into the pool, its indexes and its account's list (not yet a
    /// level: `queue_orders` does that in priority order).
    fn restore_order(&mut self, a: AccountId, r: &mut Reader) -> Result<(), SnapshotError> {
        let (id, client, m) = (r.u64()?, r.u64()?, r.u32()?);
        let side = r.side()?;
        let (price, qty) = (Price(r.i64()?), Qty(r.i64()?));
        let stp = r.stp()?;
        let (post_only, reduce_only) = (r.bool()?, r.bool()?);
        let fits = self.markets.get(m as usize).is_some_and(|mk| {
            mk.book.cfg.admits_price(price) && qty.0 > 0 && qty <= mk.book.cfg.max_qty
        });
        let fresh = id < self.next_order_id
            && self.by_id.get(id, self.pool.order_id()).is_none()
            && self
                .by_client
                .get((a.0, client), self.pool.client_key())
                .is_none()
            && client <= self.accounts[a.0 as usize].client_id_high
            && self.accounts[a.0 as usize].orders < self.cfg.max_orders_per_account;
        if !fits || !fresh {
            return invalid(format!("account {}: order {id} does not fit", a.0));
        }
        let order = Order {
            id: OrderId(id),
            client_id: ClientOrderId(client),
            account: a,
            market: MarketId(m),
            side,
            stp,
            post_only,
            reduce_only,
            price,
            qty,
            ..Order::default()
        };
        let Some(slot) = self.pool.alloc(order) else {
            return invalid("more orders than max_orders");
        };
        self.by_id.insert(id, slot, self.pool.order_id());
        self.by_client
            .insert((a.0, client), slot, self.pool.client_key());
        self.link_account(slot);
        Ok(())
    }

    fn restore_position(
        &mut self,
        a: AccountId,
        m: MarketId,
        r: &mut Reader,
    ) -> Result<(), SnapshotError> {
        if self.reserve_position(a, m).is_err() {
            return invalid("more positions than max_positions");
        }
        let (size, cost, leverage, funding) = (r.i64()?, r.i128()?, r.u32()?, r.i128()?);
        let (isolated, bucket, buy_open, sell_open) = (r.bool()?, r.i128()?, r.i64()?, r.i64()?);
        let p = self.pos_mut(a, m);
        (p.size, p.cost, p.leverage, p.funding) = (size, cost, leverage, funding);
        if isolated || bucket != 0 || buy_open != 0 || sell_open != 0 {
            let x = self.extra_mut(a, m);
            (x.isolated, x.bucket, x.buy_open, x.sell_open) =
                (isolated, bucket, buy_open, sell_open);
        }
        let p = *self.pos(a, m);
        if p == super::positions::DEFAULT_POSITION {
            return invalid(format!(
                "account {}: default position in market {}",
                a.0, m.0
            ));
        }
        Ok(())
    }

    /// Puts every restored order on its level, in the snapshot's priority order; every
    /// order must be queued exactly once, on its own market and side.
    fn queue_orders(&mut self, queues: &[[Vec<u64>; 2]]) -> Result<(), SnapshotError> {
        let mut queued = 0usize;
        for (m, sides) in queues.iter().enumerate() {
            for (side, ids) in [Side::Buy, Side::Sell].into_iter().zip(sides) {
                for &id in ids {
                    let Some(slot) = self.by_id.get(id, self.pool.order_id()) else {
                        return invalid(format!("queued order {id} is not an account's"));
                    };
                    let o = self.pool[slot];
                    let book = &self.markets[m].book;
                    let level = book.cfg.level_of(o.price);
                    if o.market.0 as usize != m
                        || o.side != side
                        || o.prev != NIL
                        || o.next != NIL
                        || book.level(level).head == slot
                        || book.side_at(level).is_some_and(|s| s != side)
                    {
                        return invalid(format!("order {id} queued twice or out of place"));
                    }
                    self.markets[m].book.push_back(&mut self.pool, slot);
                    queued += 1;
                }
            }
        }
        if queued != self.pool.live() {
            return invalid("a resting order on no queue");
        }
        for mk in &self.markets {
            if let (Some(b), Some(a)) = (mk.book.best(Side::Buy), mk.book.best(Side::Sell)) {
                if b >= a {
                    return invalid("a crossed book");
                }
            }
        }
        Ok(())
    }

    /// Keys every pool in the trigger indexes, as after a rebase.
    fn rebuild_indexes(&mut self) {
        for a in 0..self.accounts.len() {
            let id = AccountId(a as u32);
            let mut s = self.first_slot(id);
            let mut cross = false;
            while s != NIL {
                let m = self.slot_market(s);
                match self.pool_of(id, m) {
                    super::margin::PoolId::Cross => cross = true,
                    pool @ super::margin::PoolId::Isolated(_) => self.rekey(id, pool),
                }
                s = self.next_slot(s);
            }
            if cross {
                self.rekey(id, super::margin::PoolId::Cross);
            }
            if self.order_margin_markets > 0 && self.first_slot(id) != NIL {
                self.rekey_orders(id);
            }
        }
    }
}

/// A market's configuration as its `AddMarket` command encoding (snapshots and the
/// state hash).
pub(super) fn market_config_bytes(cfg: &crate::market::MarketConfig) -> Vec<u8> {
    let mut out = Vec::new();
    Command {
        seq: 0,
        ts_ns: 0,
        kind: CommandKind::AddMarket(Box::new(*cfg)),
    }
    .encode(&mut out);
    out
}
