//! The state hash: a 64-bit digest of everything that decides what the engine does next,
//! in a canonical order that does not depend on where things sit in memory.
//!
//! Covered, in this order: the next order id and the ledgers (fees, funding dust,
//! insurance cash, bad debt); per market in id order, its configuration (as its
//! `AddMarket` encoding), halt flag, mark, volatility state, open interest, backing,
//! the fund's position and cash, the funding index with its range and ledger, and its
//! book, bids then asks, best level first, each level's orders in queue order; per
//! account in id order, whether it is open, its collateral, its resting order ids in
//! acceptance order, its positions in market order (size, cost, leverage, funding
//! snapshot, isolated mode, bucket, resting quantities) and its waiting conditional
//! orders in placement order. Left out: what is rebuilt from these (trigger indexes,
//! hash tables, free lists, slot numbers, scratch). Words are folded with FNV-1a's step,
//! as [`crate::HashSink`] folds events.

use super::Engine;
use crate::pool::NIL;
use crate::types::Side;

/// FNV-1a over 64-bit words.
struct Digest(u64);

impl Digest {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x0100_0000_01b3);
    }
    fn i128(&mut self, v: i128) {
        self.word(v as u64);
        self.word((v >> 64) as u64);
    }
    fn bytes(&mut self, b: &[u8]) {
        for chunk in b.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w));
        }
        self.word(b.len() as u64);
    }
}

impl Engine {
    /// The state hash (module docs): two engines with the same hash emit the same
    /// events for any continuation (up to the hash's own collisions). O(accounts +
    /// orders + positions + markets).
    pub fn state_hash(&self) -> u64 {
        let mut h = Digest(0xcbf2_9ce4_8422_2325);
        h.word(self.next_order_id);
        for v in [
            self.fee_ledger,
            self.funding_dust,
            self.insurance,
            self.bad_debt,
        ] {
            h.i128(v);
        }
        h.word(self.markets.len() as u64);
        for m in 0..self.markets.len() {
            self.digest_market(m, &mut h);
        }
        for a in 0..self.accounts.len() {
            self.digest_account(a, &mut h);
        }
        h.0
    }

    fn digest_market(&self, m: usize, h: &mut Digest) {
        let mk = &self.markets[m];
        h.bytes(&super::snapshot::market_config_bytes(&mk.book.cfg));
        h.word(u64::from(mk.halted));
        h.word(mk.mark as u64);
        h.word(mk.ewma.to_bits() as u64);
        h.word(mk.scale.to_bits() as u64);
        h.word(mk.oi as u64);
        h.i128(mk.backing);
        h.word(mk.fund_size as u64);
        h.i128(mk.fund_cost);
        h.i128(mk.fund_cash);
        for v in mk.funding.digest() {
            h.i128(v);
        }
        for side in [Side::Buy, Side::Sell] {
            let mut level = mk.book.best(side);
            while let Some(i) = level {
                let mut s = mk.book.level(i).head;
                while s != NIL {
                    let o = &self.pool[s];
                    h.word(o.id.0);
                    h.word(o.client_id.0);
                    h.word(u64::from(o.account.0));
                    h.word(o.price.0 as u64);
                    h.word(o.qty.0 as u64);
                    h.word(
                        o.stp as u64 | u64::from(o.post_only) << 8 | u64::from(o.reduce_only) << 9,
                    );
                    s = o.next;
                }
                h.word(u64::MAX);
                level = mk.book.next_worse(side, i);
            }
            h.word(u64::MAX - 1);
        }
    }

    fn digest_account(&self, a: usize, h: &mut Digest) {
        let acct = &self.accounts[a];
        h.word(u64::from(acct.open));
        h.i128(acct.collateral);
        let mut s = acct.head;
        while s != NIL {
            h.word(self.pool[s].id.0);
            s = self.pool[s].acct_next;
        }
        h.word(u64::MAX);
        let mut s = acct.positions;
        while s != NIL {
            let (p, x) = (
                &self.slots.pos[s as usize],
                self.extra_of(&self.slots.pos[s as usize]),
            );
            h.word(u64::from(self.slot_market(s).0));
            h.word(p.size as u64);
            h.i128(p.cost);
            h.word(u64::from(p.leverage));
            h.i128(p.funding);
            h.word(u64::from(x.isolated));
            h.i128(x.bucket);
            h.word(x.buy_open as u64);
            h.word(x.sell_open as u64);
            s = self.next_slot(s);
        }
        h.word(u64::MAX);
        self.conditionals.digest_account(a, |bytes| h.bytes(bytes));
    }
}
