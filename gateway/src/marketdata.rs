//! The market-data feed: one sequenced binary stream (SOFH + SBE framing, schema 2)
//! of L2 level updates, trades, every liquidation and ADL event unsampled, marks,
//! funding and market figures, with a book snapshot on subscribe and retransmission
//! from a retained window after a gap.
//!
//! Invariants: feed sequence numbers are dense from 1; the book mirror equals the
//! engine's book after every released command (it is built from the engine's own
//! absolute `Level` events); a snapshot is taken at a feed sequence number and the
//! incrementals after it apply on top of it exactly; a subscriber only ever receives
//! whole frames.

use std::collections::{BTreeMap, VecDeque};

use cascade_core::{Event, EventKind, MarketId, Price, Qty, Side};

use crate::binary::frame;
use crate::server::request::MarketStats;

/// Schema id of the feed.
pub const SCHEMA: u16 = 2;
/// Schema version.
pub const VERSION: u16 = 1;

/// Template ids of the feed.
pub mod template {
    /// Client → server: subscribe from a feed sequence number (0: snapshot).
    pub const SUBSCRIBE: u16 = 210;
    /// A snapshot starts: the feed sequence number it reflects.
    pub const SNAPSHOT_START: u16 = 211;
    /// One level of the snapshot.
    pub const SNAPSHOT_LEVEL: u16 = 212;
    /// The snapshot ends.
    pub const SNAPSHOT_END: u16 = 213;
    /// A level's new total (qty 0: gone).
    pub const LEVEL: u16 = 220;
    /// A trade.
    pub const TRADE: u16 = 221;
    /// A liquidation step.
    pub const LIQUIDATION: u16 = 222;
    /// An ADL fill.
    pub const ADL: u16 = 223;
    /// A new mark price.
    pub const MARK: u16 = 224;
    /// A funding index change.
    pub const FUNDING: u16 = 225;
    /// Open interest, aggregate leverage, insurance fund equity.
    pub const STATS: u16 = 226;
    /// The server is closing this subscription.
    pub const DISCONNECT: u16 = 230;
}

/// Liquidation steps in template 222.
pub mod liquidation {
    /// An account went below maintenance.
    pub const STARTED: u8 = 1;
    /// A liquidation order entered the book.
    pub const ORDER: u8 = 2;
    /// The insurance fund took the position over.
    pub const BACKSTOP: u8 = 3;
    /// The liquidation finished.
    pub const FINISHED: u8 = 4;
    /// Bad debt written off.
    pub const BAD_DEBT: u8 = 5;
}

/// Disconnect reasons.
pub mod disconnect {
    /// The subscriber's unsent bytes passed the bound.
    pub const SLOW_CONSUMER: u8 = 1;
    /// The gateway is shutting down.
    pub const SHUTDOWN: u8 = 2;
    /// The request was malformed.
    pub const BAD_REQUEST: u8 = 3;
}

fn sat(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The feed's state: sequence, book mirror, retained window.
#[derive(Debug)]
pub struct Hub {
    seq: u64,
    book: BTreeMap<(u32, u8, i64), (i64, u32)>,
    retained: VecDeque<(u64, Vec<u8>)>,
    keep: usize,
    /// Frames produced since the last [`Hub::take`], to broadcast.
    fresh: Vec<u8>,
}

impl Hub {
    /// A feed retaining the last `keep` messages for retransmission.
    pub fn new(keep: usize) -> Hub {
        Hub {
            seq: 0,
            book: BTreeMap::new(),
            retained: VecDeque::new(),
            keep,
            fresh: Vec::new(),
        }
    }

    /// Last feed sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Seeds the book mirror at start.
    pub fn seed(&mut self, levels: &[(MarketId, Side, Price, Qty, u32)]) {
        for &(m, s, p, q, n) in levels {
            self.book.insert((m.0, side_code(s), p.0), (q.0, n));
        }
    }

    /// The mirror's levels (market, side code 1 buy / 2 sell, price) → (qty, orders).
    pub fn book(&self) -> &BTreeMap<(u32, u8, i64), (i64, u32)> {
        &self.book
    }

    fn emit(&mut self, template: u16, fill: impl FnOnce(&mut frame::Block<'_>)) {
        self.seq += 1;
        let seq = self.seq;
        let mut msg = Vec::with_capacity(64);
        frame::write(&mut msg, SCHEMA, VERSION, template, |b| {
            b.u64(seq);
            fill(b);
        });
        self.fresh.extend_from_slice(&msg);
        self.retained.push_back((seq, msg));
        if self.retained.len() > self.keep {
            self.retained.pop_front();
        }
    }

    /// Publishes one released command's events.
    pub fn on_events(&mut self, events: &[Event]) {
        for e in events {
            self.event(e);
        }
    }

    fn event(&mut self, e: &Event) {
        use template as t;
        match e.kind {
            EventKind::Level {
                market,
                side,
                price,
                qty,
                orders,
            } => {
                let key = (market.0, side_code(side), price.0);
                if qty.0 == 0 {
                    self.book.remove(&key);
                } else {
                    self.book.insert(key, (qty.0, orders));
                }
                self.emit(t::LEVEL, |b| {
                    b.u32(market.0)
                        .u8(side_code(side))
                        .pad(3)
                        .i64(price.0)
                        .i64(qty.0)
                        .u32(orders)
                        .pad(4);
                });
            }
            EventKind::Fill {
                market,
                taker_side,
                price,
                qty,
                liquidation,
                ..
            } => {
                self.emit(t::TRADE, |b| {
                    b.u32(market.0)
                        .u8(side_code(taker_side))
                        .u8(u8::from(liquidation))
                        .pad(2)
                        .i64(price.0)
                        .i64(qty.0);
                });
            }
            EventKind::LiquidationStarted {
                account,
                market,
                equity,
                ..
            } => {
                self.liq(
                    liquidation::STARTED,
                    market,
                    0,
                    account.0,
                    0,
                    0,
                    sat(equity),
                );
            }
            EventKind::LiquidationOrder {
                account,
                market,
                side,
                price,
                qty,
                ..
            } => {
                self.liq(
                    liquidation::ORDER,
                    Some(market),
                    side_code(side),
                    account.0,
                    price.0,
                    qty.0,
                    0,
                );
            }
            EventKind::Backstop {
                account,
                market,
                qty,
                price,
            } => {
                self.liq(
                    liquidation::BACKSTOP,
                    Some(market),
                    0,
                    account.0,
                    price.0,
                    qty.0,
                    0,
                );
            }
            EventKind::LiquidationFinished {
                account,
                market,
                fee,
                ..
            } => {
                self.liq(liquidation::FINISHED, market, 0, account.0, 0, 0, fee);
            }
            EventKind::BadDebt {
                account,
                market,
                amount,
                ..
            } => {
                self.liq(
                    liquidation::BAD_DEBT,
                    market,
                    0,
                    account.0,
                    0,
                    0,
                    sat(amount),
                );
            }
            EventKind::AdlFill {
                market,
                account,
                counterparty,
                qty,
                price,
            } => {
                self.emit(t::ADL, |b| {
                    b.u32(market.0)
                        .u32(account.0)
                        .u32(counterparty.0)
                        .pad(4)
                        .i64(price.0)
                        .i64(qty.0);
                });
            }
            EventKind::MarkUpdated { market, price, .. } => {
                self.emit(t::MARK, |b| {
                    b.u32(market.0).pad(4).i64(price.0);
                });
            }
            EventKind::FundingIndexed {
                market,
                delta,
                index,
            } => {
                self.emit(t::FUNDING, |b| {
                    b.u32(market.0).pad(4).i64(sat(delta)).i64(sat(index));
                });
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn liq(
        &mut self,
        step: u8,
        market: Option<MarketId>,
        side: u8,
        account: u32,
        price: i64,
        qty: i64,
        amount: i64,
    ) {
        self.emit(template::LIQUIDATION, |b| {
            b.u32(market.map_or(u32::MAX, |m| m.0))
                .u8(step)
                .u8(side)
                .pad(2)
                .u32(account)
                .pad(4);
            b.i64(price).i64(qty).i64(amount);
        });
    }

    /// Publishes market figures.
    pub fn on_stats(&mut self, rows: &[MarketStats]) {
        for r in rows {
            self.emit(template::STATS, |b| {
                b.u32(r.market.0)
                    .pad(4)
                    .i64(r.mark)
                    .i64(r.open_interest)
                    .i64(r.leverage_bps)
                    .i64(sat(r.fund_equity));
            });
        }
    }

    /// Takes the frames produced since the last call (to send to every subscriber).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.fresh)
    }

    /// What a new subscription from `from` gets: the retained frames from `from` on if
    /// they are all still here, otherwise a snapshot at the current sequence number.
    pub fn subscribe(&self, from: u64, out: &mut Vec<u8>) {
        let first = self.retained.front().map_or(self.seq + 1, |r| r.0);
        if from > 0 && from >= first && from <= self.seq + 1 {
            for (_, m) in self.retained.iter().skip((from - first) as usize) {
                out.extend_from_slice(m);
            }
            return;
        }
        let seq = self.seq;
        frame::write(out, SCHEMA, VERSION, template::SNAPSHOT_START, |b| {
            b.u64(seq).u32(self.book.len() as u32).pad(4);
        });
        for (&(m, s, p), &(q, n)) in &self.book {
            frame::write(out, SCHEMA, VERSION, template::SNAPSHOT_LEVEL, |b| {
                b.u32(m).u8(s).pad(3).i64(p).i64(q).u32(n).pad(4);
            });
        }
        frame::write(out, SCHEMA, VERSION, template::SNAPSHOT_END, |b| {
            b.u64(seq);
        });
    }
}

/// 1 buy, 2 sell (as FIX Side).
pub fn side_code(s: Side) -> u8 {
    match s {
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

/// A disconnect frame.
pub fn disconnect_frame(out: &mut Vec<u8>, reason: u8) {
    frame::write(out, SCHEMA, VERSION, template::DISCONNECT, |b| {
        b.u8(reason).pad(7);
    });
}
