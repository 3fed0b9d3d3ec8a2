//! Position storage: a preallocated arena of `max_positions` slots, one per (account,
//! market) pair whose state differs from [`Position::default`], so memory grows with the
//! positions held, not with accounts × markets.
//!
//! A slot holds the pair's [`Position`] (48 bytes: size, cost, leverage, funding
//! snapshot) and, in `Engine::links` at the same index, its liquidation-index link. What
//! only some pairs need lives in a second arena of [`Extra`]s, named by
//! `Position::extra`: the isolated bucket and mode, the resting quantities and (in
//! `Engine::im_links` at the extra's index) the order-margin link. A pair takes an extra
//! when it goes isolated, rests an order in a leveraged market or is linked in the
//! order-margin index, and gives it back as soon as none of these holds. The extras are
//! preallocated for `min(max_positions, max_orders + 4,096)` pairs, enough for every
//! pair with resting orders, and grow, doubling, up to `max_positions` when isolated
//! pairs or order-margin links need more (a pool resting orders in a market with order
//! margin while active in several markets links each of its positions, so it takes an
//! extra per position): memory follows what the pairs hold. A plain cross position costs
//! 92 bytes (record, list links, liquidation link); an extra 76 (record, owner,
//! order-margin link).
//!
//! Each account threads its slots into a singly linked list sorted by ascending market id
//! (`AccountState::positions`): a lookup walks the account's few slots, and every
//! per-account loop visits its positions in the same ascending market order the dense
//! array gave, so events do not change. Each market threads its slots into a doubly
//! linked holder list (`MarketState::holders`, unordered): ADL ranking and the trigger
//! indexes' rebases walk it (ADL sorts what it takes by account id), so they cost
//! O(holders), not O(accounts). Free slots form a stack threaded through
//! `acct_next`.
//!
//! A slot is taken when a pair first needs state (a fill, a resting order, a leverage or
//! isolated-mode setting) and given back as soon as the state is default again (after a
//! fill, an order-book change or a margin-mode change), after unlinking it from both
//! trigger indexes. Commands that may need a new slot are refused with
//! `PositionCapacity` before they change anything when none is free (SEMANTICS.md):
//! a new order in a leveraged market, `SetLeverage`, `SetMarginMode` to isolated. Every
//! other write goes to a pair that already holds a slot (a maker rests an order, so its
//! slot holds the open quantity; liquidation, ADL and backstop trade between holders
//! and the fund, whose positions live in `MarketState`), or to the taker of the command,
//! whose slot was reserved; during a match the makers' pairs only go from non-default
//! to non-default (a maker's slot given back by its order's fill is taken again by the
//! fill itself), so the reserved slot is still free when the taker needs it.
//!
//! Invariants (checked by `verify_positions`): every live slot is in exactly one account
//! list (its account's, in strictly ascending market order, so no pair has two slots)
//! and in exactly one market list (its market's); no live slot holds default state (its
//! position and extra; an order-margin link alone is not state); free slots hold default
//! state and an unlinked trigger link; live + free = `max_positions`. Every live extra is
//! named by exactly one live slot and holds state or a linked order-margin link; free
//! extras are default and unlinked; live + free = the extras' length.

use super::margin::Position;
use super::Engine;
use crate::pool::NIL;
use crate::types::{AccountId, MarketId};

/// The default state, read for every pair without a slot.
pub(super) const DEFAULT_POSITION: Position = Position {
    size: 0,
    cost: 0,
    leverage: 0,
    funding: 0,
    extra: NIL,
};

/// State that only some pairs hold, kept apart from [`Position`] so that a plain cross
/// position does not pay for it: the isolated-margin bucket and the resting quantities.
/// The pair's order-margin link sits in `Engine::im_links` at the same index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Extra {
    /// Isolated margin mode.
    pub(super) isolated: bool,
    /// Isolated bucket balance (0 unless isolated).
    pub(super) bucket: i128,
    /// Resting buy quantity; kept in leveraged markets only (nothing else reads it).
    pub(super) buy_open: i64,
    /// Resting sell quantity; leveraged markets only.
    pub(super) sell_open: i64,
}

/// The extras of a pair that has none.
pub(super) const DEFAULT_EXTRA: Extra = Extra {
    isolated: false,
    bucket: 0,
    buy_open: 0,
    sell_open: 0,
};

/// Where a slot sits in its account's and market's lists.
#[derive(Clone, Copy, Debug)]
pub(super) struct SlotMeta {
    /// Owner (meaningless while free).
    pub(super) account: u32,
    /// Market (meaningless while free).
    pub(super) market: u32,
    /// Next slot of the account (ascending market), or of the free stack.
    pub(super) acct_next: u32,
    /// Previous slot in the market's holder list.
    mkt_prev: u32,
    /// Next slot in the market's holder list.
    mkt_next: u32,
}

/// The slots, their list links and the free stack; the extras and theirs.
#[derive(Clone, Debug)]
pub(super) struct PositionArena {
    /// State per slot.
    pub(super) pos: Vec<Position>,
    /// List links per slot.
    pub(super) meta: Vec<SlotMeta>,
    /// Top of the free stack.
    free: u32,
    /// Slots in use.
    live: u32,
    /// Extras, indexed by `Position::extra`.
    pub(super) ext: Vec<Extra>,
    /// Per extra: the slot that holds it, or the next free extra.
    ext_owner: Vec<u32>,
    /// Top of the extras' free stack.
    ext_free: u32,
    /// Extras in use.
    ext_live: u32,
}

/// Extras reserved beyond `max_orders`: every pair with resting orders holds one, so
/// order flow alone never grows the arena.
const EXTRA_HEADROOM: u32 = 1 << 12;

impl PositionArena {
    /// `n` free slots (`n < u32::MAX`, checked by `EngineConfig::validate`) and room for
    /// `min(n, orders + EXTRA_HEADROOM)` extras.
    pub(super) fn with_capacity(n: u32, orders: u32) -> PositionArena {
        let meta = (0..n)
            .map(|i| SlotMeta {
                account: 0,
                market: 0,
                acct_next: if i + 1 < n { i + 1 } else { NIL },
                mkt_prev: NIL,
                mkt_next: NIL,
            })
            .collect();
        let mut arena = PositionArena {
            pos: vec![DEFAULT_POSITION; n as usize],
            meta,
            free: if n > 0 { 0 } else { NIL },
            live: 0,
            ext: Vec::new(),
            ext_owner: Vec::new(),
            ext_free: NIL,
            ext_live: 0,
        };
        arena.grow_extras(n.min(orders.saturating_add(EXTRA_HEADROOM)));
        arena
    }

    /// Slots in use.
    pub(super) fn live(&self) -> u32 {
        self.live
    }

    /// Extends the extras to `len` entries (more than now), the new ones free.
    fn grow_extras(&mut self, len: u32) {
        let old = self.ext.len() as u32;
        self.ext.resize(len as usize, DEFAULT_EXTRA);
        self.ext_owner
            .extend((old..len).map(|e| if e + 1 < len { e + 1 } else { self.ext_free }));
        if len > old {
            self.ext_free = old;
        }
    }
}

impl Engine {
    /// Position slots in use: the (account, market) pairs holding state (O(1)).
    pub fn positions_held(&self) -> u32 {
        self.slots.live()
    }

    /// The slot of `(a, m)`, if the pair has one: a walk over the account's slots.
    pub(super) fn slot_of(&self, a: AccountId, m: MarketId) -> Option<u32> {
        let mut s = self.accounts[a.0 as usize].positions;
        while s != NIL {
            let meta = &self.slots.meta[s as usize];
            if meta.market >= m.0 {
                return (meta.market == m.0).then_some(s);
            }
            s = meta.acct_next;
        }
        None
    }

    /// The state of `(a, m)`: its slot's, or the default.
    pub(super) fn pos(&self, a: AccountId, m: MarketId) -> &Position {
        match self.slot_of(a, m) {
            Some(s) => &self.slots.pos[s as usize],
            None => &DEFAULT_POSITION,
        }
    }

    /// The state of `(a, m)` to write, taking a slot if the pair has none.
    ///
    /// # Panics
    ///
    /// If no slot is free: every caller writes a pair that holds a slot or was reserved
    /// by [`Engine::reserve_position`] in the same command (module docs).
    pub(super) fn pos_mut(&mut self, a: AccountId, m: MarketId) -> &mut Position {
        let s = self.held_slot(a, m);
        &mut self.slots.pos[s as usize]
    }

    /// The slot of `(a, m)`, taken if the pair has none (panics as [`Engine::pos_mut`]).
    fn held_slot(&mut self, a: AccountId, m: MarketId) -> u32 {
        match self.slot_of(a, m) {
            Some(s) => s,
            None => self.take_slot(a, m).expect("position slot reserved"),
        }
    }

    /// The extras of a position already looked up (the default if it has none).
    pub(super) fn extra_of(&self, p: &Position) -> &Extra {
        match p.extra {
            NIL => &DEFAULT_EXTRA,
            e => &self.slots.ext[e as usize],
        }
    }

    /// The extras of `(a, m)`: its slot's, or the default.
    pub(super) fn extra(&self, a: AccountId, m: MarketId) -> &Extra {
        self.extra_of(self.pos(a, m))
    }

    /// True if the pair's pool is its isolated bucket.
    pub(super) fn is_isolated(&self, p: &Position) -> bool {
        p.extra != NIL && self.slots.ext[p.extra as usize].isolated
    }

    /// The extras of `(a, m)` to write, taking a slot and an extra if the pair has none
    /// (a slot must be held or reserved, as for [`Engine::pos_mut`]).
    pub(super) fn extra_mut(&mut self, a: AccountId, m: MarketId) -> &mut Extra {
        let s = self.held_slot(a, m);
        let e = self.extra_index(s);
        &mut self.slots.ext[e as usize]
    }

    /// The extra of live slot `s`, taken if it has none. The arena grows (to at most
    /// `max_positions`) when none is free: one allocation, and its capacity stays.
    pub(super) fn extra_index(&mut self, s: u32) -> u32 {
        let e = self.slots.pos[s as usize].extra;
        if e != NIL {
            return e;
        }
        if self.slots.ext_free == NIL {
            let len = self.slots.ext.len() as u32;
            let cap = self.slots.pos.len() as u32;
            let grown = len.saturating_mul(2).max(64).min(cap);
            self.slots.grow_extras(grown);
            self.im_links
                .resize(grown as usize, super::trigger::Link::default());
        }
        let e = self.slots.ext_free;
        self.slots.ext_free = self.slots.ext_owner[e as usize];
        self.slots.ext_owner[e as usize] = s;
        self.slots.ext_live += 1;
        self.slots.pos[s as usize].extra = e;
        e
    }

    /// The slot holding extra `e`.
    pub(super) fn extra_owner(&self, e: u32) -> u32 {
        self.slots.ext_owner[e as usize]
    }

    /// Gives back slot `s`'s extra if it holds default state, unlinking its order-margin
    /// link (`force`: whatever that link says; else only if it is unlinked).
    pub(super) fn release_extra_if_empty(&mut self, s: u32, force: bool) {
        let e = self.slots.pos[s as usize].extra;
        if e == NIL
            || self.slots.ext[e as usize] != DEFAULT_EXTRA
            || !force && self.im_links[e as usize].linked()
        {
            return;
        }
        let m = self.slot_market(s).0 as usize;
        self.unlink_orders(m, e);
        self.slots.ext_owner[e as usize] = self.slots.ext_free;
        self.slots.ext_free = e;
        self.slots.ext_live -= 1;
        self.slots.pos[s as usize].extra = NIL;
    }

    /// Refuses a command that may need a slot for `(a, m)` when the pair has none and
    /// none is free.
    pub(super) fn reserve_position(
        &self,
        a: AccountId,
        m: MarketId,
    ) -> Result<(), crate::event::RejectReason> {
        if self.slots.free == NIL && self.slot_of(a, m).is_none() {
            Err(crate::event::RejectReason::PositionCapacity)
        } else {
            Ok(())
        }
    }

    /// True if slot `s` is live and holds a pair of market `m` (for `verify`).
    pub(super) fn holds(&self, s: u32, m: usize) -> bool {
        let meta = &self.slots.meta[s as usize];
        meta.market as usize == m
            && self.slot_of(self.slot_account(s), MarketId(meta.market)) == Some(s)
    }

    /// First slot of the account's list (ascending market), `NIL` if none.
    pub(super) fn first_slot(&self, a: AccountId) -> u32 {
        self.accounts[a.0 as usize].positions
    }

    /// The slot after `s` in its account's list.
    pub(super) fn next_slot(&self, s: u32) -> u32 {
        self.slots.meta[s as usize].acct_next
    }

    /// The market of a live slot.
    pub(super) fn slot_market(&self, s: u32) -> MarketId {
        MarketId(self.slots.meta[s as usize].market)
    }

    /// The account of a live slot.
    pub(super) fn slot_account(&self, s: u32) -> AccountId {
        AccountId(self.slots.meta[s as usize].account)
    }

    /// First slot of the market's holder list, `NIL` if none.
    pub(super) fn first_holder(&self, m: MarketId) -> u32 {
        self.markets[m.0 as usize].holders
    }

    /// The slot after `s` in its market's holder list.
    pub(super) fn next_holder(&self, s: u32) -> u32 {
        self.slots.meta[s as usize].mkt_next
    }

    /// Takes a free slot for `(a, m)` (which has none) and links it into both lists.
    fn take_slot(&mut self, a: AccountId, m: MarketId) -> Option<u32> {
        let s = self.slots.free;
        if s == NIL {
            return None;
        }
        self.slots.free = self.slots.meta[s as usize].acct_next;
        self.slots.live += 1;
        // Into the account's list, before the first slot of a higher market.
        let (mut prev, mut cur) = (NIL, self.accounts[a.0 as usize].positions);
        while cur != NIL && self.slots.meta[cur as usize].market < m.0 {
            prev = cur;
            cur = self.slots.meta[cur as usize].acct_next;
        }
        if prev == NIL {
            self.accounts[a.0 as usize].positions = s;
        } else {
            self.slots.meta[prev as usize].acct_next = s;
        }
        // At the head of the market's list.
        let head = self.markets[m.0 as usize].holders;
        if head != NIL {
            self.slots.meta[head as usize].mkt_prev = s;
        }
        self.markets[m.0 as usize].holders = s;
        self.slots.meta[s as usize] = SlotMeta {
            account: a.0,
            market: m.0,
            acct_next: cur,
            mkt_prev: NIL,
            mkt_next: head,
        };
        Some(s)
    }

    /// Gives back the slot of `(a, m)` if its state is default again: unlinked from both
    /// trigger indexes, its account's and its market's lists, then pushed on the free
    /// stack.
    pub(super) fn release_if_default(&mut self, a: AccountId, m: MarketId) {
        let Some(s) = self.slot_of(a, m) else {
            return;
        };
        self.release_extra_if_empty(s, false);
        // An order-margin link alone keeps nothing: it is re-derived from the state.
        let p = self.slots.pos[s as usize];
        if (Position { extra: NIL, ..p }) != DEFAULT_POSITION || *self.extra_of(&p) != DEFAULT_EXTRA
        {
            return;
        }
        self.release_extra_if_empty(s, true);
        self.unlink_liquidation(m.0 as usize, s as usize);
        let meta = self.slots.meta[s as usize];
        let mut cur = self.accounts[a.0 as usize].positions;
        if cur == s {
            self.accounts[a.0 as usize].positions = meta.acct_next;
        } else {
            while self.slots.meta[cur as usize].acct_next != s {
                cur = self.slots.meta[cur as usize].acct_next;
            }
            self.slots.meta[cur as usize].acct_next = meta.acct_next;
        }
        if meta.mkt_prev == NIL {
            self.markets[m.0 as usize].holders = meta.mkt_next;
        } else {
            self.slots.meta[meta.mkt_prev as usize].mkt_next = meta.mkt_next;
        }
        if meta.mkt_next != NIL {
            self.slots.meta[meta.mkt_next as usize].mkt_prev = meta.mkt_prev;
        }
        self.slots.meta[s as usize] = SlotMeta {
            account: 0,
            market: 0,
            acct_next: self.slots.free,
            mkt_prev: NIL,
            mkt_next: NIL,
        };
        self.slots.free = s;
        self.slots.live -= 1;
    }

    /// Checks the module invariants by brute force.
    pub(super) fn verify_positions(&self) -> Result<(), String> {
        let n = self.slots.pos.len();
        let mut in_account = vec![0u8; n];
        for (a, acct) in self.accounts.iter().enumerate() {
            let (mut s, mut last) = (acct.positions, None);
            while s != NIL {
                let meta = &self.slots.meta[s as usize];
                if meta.account as usize != a || last.is_some_and(|l| l >= meta.market) {
                    return Err(format!("account {a}: position list broken at slot {s}"));
                }
                if (meta.market as usize) >= self.markets.len() || in_account[s as usize] > 0 {
                    return Err(format!("account {a}: slot {s} misplaced"));
                }
                let p = self.slots.pos[s as usize];
                if (Position { extra: NIL, ..p }) == DEFAULT_POSITION
                    && *self.extra_of(&p) == DEFAULT_EXTRA
                {
                    return Err(format!("account {a}: slot {s} holds default state"));
                }
                in_account[s as usize] = 1;
                last = Some(meta.market);
                s = meta.acct_next;
            }
        }
        let mut in_market = 0u32;
        for (m, mk) in self.markets.iter().enumerate() {
            let (mut prev, mut s) = (NIL, mk.holders);
            while s != NIL {
                let meta = &self.slots.meta[s as usize];
                if meta.market as usize != m || meta.mkt_prev != prev || in_account[s as usize] != 1
                {
                    return Err(format!("market {m}: holder list broken at slot {s}"));
                }
                in_account[s as usize] = 2;
                in_market += 1;
                prev = s;
                s = meta.mkt_next;
            }
        }
        let live = in_account.iter().filter(|&&x| x > 0).count();
        if in_account.contains(&1) || live != in_market as usize || live != self.slots.live as usize
        {
            return Err(format!(
                "{live} slots in account lists, {in_market} in market lists, {} counted",
                self.slots.live
            ));
        }
        let (mut s, mut free) = (self.slots.free, 0usize);
        while s != NIL {
            if in_account[s as usize] != 0 || free > n {
                return Err(format!("free slot {s} also live, or the free stack loops"));
            }
            if self.slots.pos[s as usize] != DEFAULT_POSITION
                || self
                    .links
                    .get(s as usize)
                    .is_some_and(super::trigger::Link::linked)
            {
                return Err(format!("free slot {s} holds state or links"));
            }
            free += 1;
            s = self.slots.meta[s as usize].acct_next;
        }
        if free + live != n {
            return Err(format!("{free} free + {live} live slots != {n}"));
        }
        self.verify_extras(&in_account)
    }

    /// Checks the extras: each live one held by exactly one live slot that names it, and
    /// holding state or an order-margin link; free ones default and unlinked; live + free
    /// = the arena's length.
    fn verify_extras(&self, live_slots: &[u8]) -> Result<(), String> {
        let n = self.slots.ext.len();
        if self.im_links.len() != n || self.slots.ext_owner.len() != n {
            return Err(format!(
                "{n} extras, {} order-margin links",
                self.im_links.len()
            ));
        }
        let mut live = 0usize;
        for (s, p) in self.slots.pos.iter().enumerate() {
            let e = p.extra;
            if e == NIL {
                continue;
            }
            if live_slots[s] == 0 || e as usize >= n || self.slots.ext_owner[e as usize] != s as u32
            {
                return Err(format!("slot {s}: extra {e} not its own"));
            }
            if self.slots.ext[e as usize] == DEFAULT_EXTRA && !self.im_links[e as usize].linked() {
                return Err(format!("slot {s}: extra {e} holds nothing"));
            }
            live += 1;
        }
        let (mut e, mut free) = (self.slots.ext_free, 0usize);
        while e != NIL {
            if free > n
                || self.slots.ext[e as usize] != DEFAULT_EXTRA
                || self.im_links[e as usize].linked()
            {
                return Err(format!(
                    "free extra {e} holds state, or the free stack loops"
                ));
            }
            free += 1;
            e = self.slots.ext_owner[e as usize];
        }
        if live != self.slots.ext_live as usize || free + live != n {
            return Err(format!(
                "{live} live ({} counted) + {free} free extras != {n}",
                self.slots.ext_live
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::trigger::Link;
    use super::*;

    /// The per-position budget the module docs state (and `cascade-bench scale`
    /// measures): a plain cross position costs its record, its list links and one
    /// liquidation link; only some pairs add an extra.
    #[test]
    fn a_position_costs_92_bytes_and_an_extra_is_apart() {
        use std::mem::size_of;
        assert_eq!(size_of::<Position>(), 48);
        assert_eq!(size_of::<SlotMeta>(), 20);
        assert_eq!(size_of::<Link>(), 24);
        assert_eq!(size_of::<Extra>(), 48);
    }

    /// The extras start at `min(slots, orders + headroom)`, free, and grow on demand.
    #[test]
    fn extras_are_reserved_for_the_orders_and_free() {
        let a = PositionArena::with_capacity(10_000, 16);
        assert_eq!(a.ext.len(), 16 + EXTRA_HEADROOM as usize);
        let b = PositionArena::with_capacity(100, 16);
        assert_eq!(b.ext.len(), 100);
        let (mut e, mut free) = (b.ext_free, 0);
        while e != NIL {
            free += 1;
            e = b.ext_owner[e as usize];
        }
        assert_eq!(free, 100);
    }
}
