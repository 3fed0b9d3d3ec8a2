//! Position storage: a preallocated arena of `max_positions` slots, one per (account,
//! market) pair whose state differs from [`Position::default`], so memory grows with the
//! positions held, not with accounts × markets.
//!
//! A slot holds the pair's [`Position`] and, in `Engine::links`/`Engine::im_links` at the
//! same index, its two trigger-index links. Each account threads its slots into a singly
//! linked list sorted by ascending market id (`AccountState::positions`): a lookup walks
//! the account's few slots, and every per-account loop visits its positions in the same
//! ascending market order the dense array gave, so events do not change. Each market
//! threads its slots into a doubly linked holder list (`MarketState::holders`, unordered):
//! funding and ADL ranking walk it and sort what they take from it (by account id), so
//! they cost O(holders), not O(accounts). Free slots form a stack threaded through
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
//! and in exactly one market list (its market's); no live slot holds default state; free
//! slots hold default state and unlinked trigger links; live + free = `max_positions`.

use super::margin::Position;
use super::Engine;
use crate::pool::NIL;
use crate::types::{AccountId, MarketId};

/// The default state, read for every pair without a slot.
const DEFAULT_POSITION: Position = Position {
    size: 0,
    cost: 0,
    leverage: 0,
    isolated: false,
    bucket: 0,
    buy_open: 0,
    sell_open: 0,
    funding: 0,
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

/// The slots, their list links and the free stack.
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
}

impl PositionArena {
    /// `n` free slots (`n < u32::MAX`, checked by `EngineConfig::validate`).
    pub(super) fn with_capacity(n: u32) -> PositionArena {
        let meta = (0..n)
            .map(|i| SlotMeta {
                account: 0,
                market: 0,
                acct_next: if i + 1 < n { i + 1 } else { NIL },
                mkt_prev: NIL,
                mkt_next: NIL,
            })
            .collect();
        PositionArena {
            pos: vec![Position::default(); n as usize],
            meta,
            free: if n > 0 { 0 } else { NIL },
            live: 0,
        }
    }

    /// Slots in use.
    pub(super) fn live(&self) -> u32 {
        self.live
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
        let s = match self.slot_of(a, m) {
            Some(s) => s,
            None => self.take_slot(a, m).expect("position slot reserved"),
        };
        &mut self.slots.pos[s as usize]
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
        if self.slots.pos[s as usize] != DEFAULT_POSITION {
            return;
        }
        self.unlink_triggers(m.0 as usize, s as usize);
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
                if self.slots.pos[s as usize] == DEFAULT_POSITION {
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
                || self
                    .im_links
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
        Ok(())
    }
}
