//! Side-by-side comparison with order-book crates from crates.io on one deterministic
//! workload (`cascade-bench peers`, built with `--features peers`).
//!
//! Fairness: every book gets the same operations with the same ids, in the subset all of
//! them support — resting limit adds that never cross (each add is placed behind the
//! best opposite price at generation time), cancels by id, and market orders — with one
//! taker that never rests, so no self-trade prevention is involved. Every book must then
//! report the same number of fills and the same traded volume; the run says so, or says
//! which book differs. Peers' semantics that differ: `lobster` and `rust-order-book` use
//! unsigned integer prices, `orderbook-rs` u128 prices and its own id type and is built
//! for concurrent access; `rust-order-book` assigns its own order ids (mapped here).

use crate::rng::Rng;
use crate::workload::MARKET;
use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, EngineConfig, Event, EventKind,
    EventSink, MarketConfig, MarketId, NewOrder, OrderType, Price, Qty, Side, StpMode,
};

/// One operation of the shared workload; ids are dense from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A resting limit order that does not cross.
    Add {
        /// Workload id.
        id: u64,
        /// True for a bid.
        buy: bool,
        /// Price in ticks.
        price: u64,
        /// Lots.
        qty: u64,
    },
    /// Cancel a workload id (it may have been filled meanwhile).
    Cancel {
        /// Workload id.
        id: u64,
    },
    /// A market order from the taker.
    Market {
        /// Workload id.
        id: u64,
        /// True for a buy.
        buy: bool,
        /// Lots.
        qty: u64,
    },
}

/// What a book reported for a whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Fills (maker orders touched).
    pub fills: u64,
    /// Lots traded.
    pub volume: u64,
}

/// An order book under comparison.
pub trait Book {
    /// Display name with version.
    fn name(&self) -> &'static str;
    /// Applies one operation and adds its fills to `tally`.
    fn apply(&mut self, op: &Op, tally: &mut Tally);
}

/// Cascade, through its public command API: workload ids are client order ids, and
/// cancels go by client id, so the adapter keeps no id map of its own.
pub struct Cascade {
    engine: Engine,
    sink: Tally,
    seq: u64,
}

impl EventSink for Tally {
    fn emit(&mut self, event: Event) {
        if let EventKind::Fill { qty, .. } = event.kind {
            self.fills += 1;
            self.volume += qty.0 as u64;
        }
    }
}

/// The comparison market: the workload's, with a 100% market band (a market order
/// walks the book as far as it must, as the peers' do).
const PEER_MARKET: MarketConfig = MarketConfig {
    market_band_bps: 10_000,
    ..MARKET
};
const TAKER: AccountId = AccountId(0);
const MAKERS: u32 = 1_000;

impl Cascade {
    /// A fresh engine with the comparison market and accounts.
    pub fn new() -> Cascade {
        let cfg = EngineConfig {
            max_orders: 1 << 15,
            max_accounts: MAKERS + 1,
            max_markets: 1,
            max_positions: MAKERS + 1,
            max_conditionals: 0,
            liquidation_ring: 64,
            max_orders_per_account: 1 << 15,
            hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
        };
        let mut c = Cascade {
            engine: Engine::new(cfg),
            sink: Tally::default(),
            seq: 0,
        };
        c.run(CommandKind::AddMarket(Box::new(PEER_MARKET)));
        for a in 0..=MAKERS {
            c.run(CommandKind::OpenAccount(AccountId(a)));
        }
        c
    }

    #[inline]
    fn run(&mut self, kind: CommandKind) {
        self.seq += 1;
        self.engine.apply(
            &Command {
                seq: self.seq,
                ts_ns: 0,
                kind,
            },
            &mut self.sink,
        );
    }

    fn order(&mut self, id: u64, account: AccountId, buy: bool, order_type: OrderType, qty: u64) {
        self.run(CommandKind::NewOrder(NewOrder {
            account,
            market: MarketId(0),
            client_id: ClientOrderId(id),
            side: if buy { Side::Buy } else { Side::Sell },
            order_type,
            qty: Qty(qty as i64),
            stp: StpMode::CancelResting,
            reduce_only: false,
        }));
    }
}

impl Default for Cascade {
    fn default() -> Self {
        Self::new()
    }
}

/// The maker account of a workload id.
fn maker(id: u64) -> AccountId {
    AccountId(1 + (id % u64::from(MAKERS)) as u32)
}

impl Book for Cascade {
    fn name(&self) -> &'static str {
        "cascade"
    }

    fn apply(&mut self, op: &Op, tally: &mut Tally) {
        self.sink = Tally::default();
        match *op {
            Op::Add {
                id,
                buy,
                price,
                qty,
            } => self.order(
                id,
                maker(id),
                buy,
                OrderType::Limit(Price(price as i64)),
                qty,
            ),
            Op::Cancel { id } => self.run(CommandKind::CancelByClientId {
                account: maker(id),
                client_id: ClientOrderId(id),
            }),
            Op::Market { id, buy, qty } => self.order(id, TAKER, buy, OrderType::Market, qty),
        }
        tally.fills += self.sink.fills;
        tally.volume += self.sink.volume;
    }
}

/// Generates `n` operations: ~56% adds 1–50 ticks behind the mid (and behind the best
/// opposite price), ~34% cancels of live ids, ~10% market orders of 1–100 lots; the
/// book is steered toward `target` resting orders.
pub fn generate(n: usize, seed: u64, target: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut book = Cascade::new();
    let mut live: Vec<u64> = Vec::with_capacity(target * 2);
    let mut ops = Vec::with_capacity(n);
    let mut mid = 100_000i64;
    let mut ignore = Tally::default();
    while ops.len() < n {
        if rng.chance(1) {
            mid = (mid + rng.range(-2, 2)).clamp(60_000, 140_000);
        }
        let id = ops.len() as u64;
        let roll = rng.below(100);
        let op = if (roll < 34 || (roll < 90 && live.len() > target * 11 / 10)) && !live.is_empty()
        {
            let i = rng.below(live.len() as u64) as usize;
            let victim = live.swap_remove(i);
            if book
                .engine
                .order_by_client(maker(victim), ClientOrderId(victim))
                .is_none()
            {
                continue; // filled meanwhile
            }
            Op::Cancel { id: victim }
        } else if roll >= 90 {
            Op::Market {
                id,
                buy: rng.chance(50),
                qty: rng.range(1, 100) as u64,
            }
        } else {
            let buy = rng.chance(50);
            let behind = rng.range(1, 50);
            let price = if buy {
                let best_ask = book
                    .engine
                    .best(MarketId(0), Side::Sell)
                    .map_or(i64::MAX, |(p, _)| p.0);
                (mid - behind).min(best_ask - 1)
            } else {
                let best_bid = book
                    .engine
                    .best(MarketId(0), Side::Buy)
                    .map_or(0, |(p, _)| p.0);
                (mid + behind).max(best_bid + 1)
            };
            live.push(id);
            Op::Add {
                id,
                buy,
                price: price as u64,
                qty: rng.range(1, 100) as u64,
            }
        };
        book.apply(&op, &mut ignore);
        ops.push(op);
    }
    ops
}

/// "N operations (A non-crossing limit adds, C cancels, M market orders)".
pub fn describe(ops: &[Op]) -> String {
    let adds = ops.iter().filter(|o| matches!(o, Op::Add { .. })).count();
    let markets = ops
        .iter()
        .filter(|o| matches!(o, Op::Market { .. }))
        .count();
    format!(
        "{} operations ({adds} non-crossing limit adds, {} cancels, {markets} market orders)",
        ops.len(),
        ops.len() - adds - markets
    )
}

/// One book's result in a comparison run.
#[derive(Clone, Debug)]
pub struct Row {
    /// Display name with version.
    pub name: &'static str,
    /// Operations per second, best of the runs.
    pub ops_per_sec: f64,
    /// Per-operation latency (one clock read pair around each), ns.
    pub latency: hdrhistogram::Histogram<u64>,
    /// Fills and volume it reported.
    pub tally: Tally,
}

impl Row {
    /// How this row's fills compare with Cascade's (`reference`), or `Err` with the
    /// words if they differ.
    pub fn agreement(&self, reference: Tally) -> Result<&'static str, String> {
        if self.tally == reference {
            Ok("same fills and volume as cascade")
        } else if self.tally.fills == 0 && self.tally.volume == reference.volume {
            Ok("same volume as cascade (reports no fills)")
        } else {
            Err(format!(
                "DIFFERS from cascade ({} fills, {} lots)",
                reference.fills, reference.volume
            ))
        }
    }
}

/// Runs `ops` through fresh instances of every book from `books` (Cascade first), best
/// of `runs` for throughput and one more run with a clock pair per operation.
pub fn compare(ops: &[Op], runs: usize, books: impl Fn() -> Vec<Box<dyn Book>>) -> Vec<Row> {
    let count = books().len();
    let fresh = |i: usize| books().swap_remove(i);
    (0..count)
        .map(|i| {
            let mut best = f64::INFINITY;
            let mut tally = Tally::default();
            for _ in 0..runs.max(1) {
                let mut book = fresh(i);
                tally = Tally::default();
                let t = std::time::Instant::now();
                for op in ops {
                    book.apply(op, &mut tally);
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            let mut latency = crate::latency::histogram();
            let mut book = fresh(i);
            let mut ignore = Tally::default();
            for op in ops {
                let t = std::time::Instant::now();
                book.apply(op, &mut ignore);
                latency.saturating_record(t.elapsed().as_nanos() as u64);
            }
            Row {
                name: book.name(),
                ops_per_sec: ops.len() as f64 / best,
                latency,
                tally,
            }
        })
        .collect()
}

#[cfg(feature = "peers")]
pub use adapters::{all_books, Lobster, OrderbookRs, RustOrderBook};

#[cfg(feature = "peers")]
mod adapters {
    use super::{Book, Op, Tally};

    /// `lobster` 0.7.
    pub struct Lobster(lobster::OrderBook);

    impl Book for Lobster {
        fn name(&self) -> &'static str {
            "lobster 0.7"
        }

        fn apply(&mut self, op: &Op, tally: &mut Tally) {
            use lobster::{OrderEvent, OrderType, Side};
            let side = |buy| if buy { Side::Bid } else { Side::Ask };
            let event = match *op {
                Op::Add {
                    id,
                    buy,
                    price,
                    qty,
                } => self.0.execute(OrderType::Limit {
                    id: u128::from(id),
                    side: side(buy),
                    qty,
                    price,
                }),
                Op::Cancel { id } => self.0.execute(OrderType::Cancel { id: u128::from(id) }),
                Op::Market { id, buy, qty } => self.0.execute(OrderType::Market {
                    id: u128::from(id),
                    side: side(buy),
                    qty,
                }),
            };
            if let OrderEvent::Filled { fills, .. } | OrderEvent::PartiallyFilled { fills, .. } =
                event
            {
                tally.fills += fills.len() as u64;
                tally.volume += fills.iter().map(|f| f.qty).sum::<u64>();
            }
        }
    }

    /// `rust-order-book` 0.0.2 (assigns its own order ids).
    pub struct RustOrderBook {
        book: rust_order_book::OrderBook,
        ids: Vec<Option<rust_order_book::OrderId>>,
    }

    impl Book for RustOrderBook {
        fn name(&self) -> &'static str {
            "rust-order-book 0.0.2"
        }

        fn apply(&mut self, op: &Op, tally: &mut Tally) {
            use rust_order_book::{Side, TimeInForce};
            let side = |buy| if buy { Side::Buy } else { Side::Sell };
            match *op {
                Op::Add {
                    id,
                    buy,
                    price,
                    qty,
                } => {
                    if let Ok(r) =
                        self.book
                            .limit_raw(side(buy), qty, price, Some(TimeInForce::GTC), None)
                    {
                        self.ids[id as usize] = Some(r.order_id);
                    }
                }
                Op::Cancel { id } => {
                    if let Some(oid) = self.ids[id as usize] {
                        let _ = self.book.cancel(oid);
                    }
                }
                Op::Market { buy, qty, .. } => {
                    if let Ok(r) = self.book.market_raw(side(buy), qty) {
                        // It does not list fills: count the volume only.
                        tally.volume += r.executed_qty.0;
                    }
                }
            }
        }
    }

    /// `orderbook-rs` 0.15 (concurrent design; used here from one thread).
    pub struct OrderbookRs(orderbook_rs::OrderBook<()>);

    impl Book for OrderbookRs {
        fn name(&self) -> &'static str {
            "orderbook-rs 0.15"
        }

        fn apply(&mut self, op: &Op, tally: &mut Tally) {
            use orderbook_rs::{Id, Side, TimeInForce};
            let side = |buy| if buy { Side::Buy } else { Side::Sell };
            match *op {
                Op::Add {
                    id,
                    buy,
                    price,
                    qty,
                } => {
                    let _ = self.0.add_limit_order(
                        Id::from_u64(id),
                        u128::from(price),
                        qty,
                        side(buy),
                        TimeInForce::Gtc,
                        None,
                    );
                }
                Op::Cancel { id } => {
                    let _ = self.0.cancel_order(Id::from_u64(id));
                }
                Op::Market { id, buy, qty } => {
                    if let Ok(m) = self.0.submit_market_order(Id::from_u64(id), qty, side(buy)) {
                        let trades = m.trades().as_vec();
                        tally.fills += trades.len() as u64;
                        tally.volume += trades.iter().map(|t| t.quantity().as_u64()).sum::<u64>();
                    }
                }
            }
        }
    }

    /// Fresh instances of Cascade (first) and every peer, for `ops` operations.
    pub fn all_books(ops: usize) -> Vec<Box<dyn Book>> {
        vec![
            Box::new(super::Cascade::new()),
            Box::new(Lobster(lobster::OrderBook::default())),
            Box::new(RustOrderBook {
                book: rust_order_book::OrderBookBuilder::new("BENCH").build(),
                ids: vec![None; ops],
            }),
            Box::new(OrderbookRs(orderbook_rs::OrderBook::new("BENCH"))),
        ]
    }
}
