//! Criterion micro-benchmarks of single engine operations on a warm book: add, cancel,
//! replace, a match sweeping k levels, a margin-checked order, a mark update with and
//! without liquidations, and the liquidation heatmap query.
//! Each iteration leaves the book as it found it, so the state does not drift.
// criterion_group!/criterion_main! generate undocumented items.
#![allow(missing_docs)]

use cascade_bench::workload::{self, Mix};
use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, Event, EventSink, MarketId, NewOrder,
    OrderId, OrderType, Price, Qty, Side, StpMode,
};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};

/// Discards events.
struct Null;

impl EventSink for Null {
    fn emit(&mut self, e: Event) {
        black_box(e);
    }
}

/// An engine after the set-up and 200,000 commands of the mixed workload (book near
/// 10,000 orders), plain or leveraged.
fn warm(margin: bool) -> (Engine, u64) {
    let mix = Mix {
        commands: 200_000,
        margin,
        ..Mix::default()
    };
    let w = workload::generate(&mix);
    let mut engine = Engine::new(workload::engine_config(&mix));
    for c in w.setup.iter().chain(&w.commands) {
        engine.apply(c, &mut Null);
    }
    let seq = w.commands.last().map_or(0, |c| c.seq);
    (engine, seq)
}

fn order(client: u64, side: Side, order_type: OrderType, qty: i64) -> CommandKind {
    CommandKind::NewOrder(NewOrder {
        account: AccountId(7),
        market: MarketId(0),
        client_id: ClientOrderId(u64::MAX - client),
        side,
        order_type,
        qty: Qty(qty),
        stp: StpMode::CancelResting,
        reduce_only: false,
    })
}

struct Driver {
    engine: Engine,
    seq: u64,
}

impl Driver {
    fn run(&mut self, kind: CommandKind) {
        self.seq += 1;
        self.engine.apply(
            &Command {
                seq: self.seq,
                ts_ns: 0,
                kind,
            },
            &mut Null,
        );
    }

    /// Places a resting bid far from the touch and returns its id.
    fn rest(&mut self, client: u64, price: i64) -> OrderId {
        self.seq += 1;
        let mut ev = Vec::with_capacity(4);
        let kind = order(client, Side::Buy, OrderType::Limit(Price(price)), 5);
        self.engine.apply(
            &Command {
                seq: self.seq,
                ts_ns: 0,
                kind,
            },
            &mut ev,
        );
        match ev[0].kind {
            cascade_core::EventKind::Accepted { order_id, .. } => order_id,
            other => panic!("not accepted: {other:?}"),
        }
    }
}

fn book_ops(c: &mut Criterion) {
    for margin in [false, true] {
        let (engine, seq) = warm(margin);
        let tag = if margin { "margin" } else { "plain" };
        let mut d = Driver { engine, seq };
        let bid = d
            .engine
            .best(MarketId(0), Side::Buy)
            .map_or(90_000, |(p, _)| p.0)
            - 200;

        c.bench_function(&format!("{tag}/add_then_cancel"), |b| {
            b.iter(|| {
                let id = d.rest(1, bid);
                d.run(CommandKind::Cancel {
                    account: AccountId(7),
                    order_id: id,
                });
            });
        });
        let id = d.rest(2, bid);
        c.bench_function(&format!("{tag}/replace_keep_priority"), |b| {
            let mut q = 5;
            b.iter(|| {
                q = if q == 5 { 4 } else { 5 };
                d.run(CommandKind::CancelReplace {
                    account: AccountId(7),
                    order_id: id,
                    price: Price(bid),
                    qty: Qty(q),
                });
            });
        });
        d.run(CommandKind::Cancel {
            account: AccountId(7),
            order_id: id,
        });
        if margin {
            c.bench_function("margin/mark_update", |b| {
                let mut up = false;
                let mark = d
                    .engine
                    .market_risk(MarketId(0))
                    .map_or(100_000, |r| r.mark);
                b.iter(|| {
                    up = !up;
                    let price = Price(mark + i64::from(up));
                    d.run(CommandKind::MarkPrice {
                        market: MarketId(0),
                        price,
                    });
                });
            });
        }
    }
}

/// Rest `k` one-lot bids on `k` levels, then one sell IOC sweeping all of them: `k + 1`
/// commands per iteration (the adds are part of the figure).
fn match_k_levels(c: &mut Criterion) {
    let mut group = c.benchmark_group("rest_k_levels_then_sweep");
    for k in [1i64, 10, 100] {
        let mut engine = Engine::new(cascade_core::EngineConfig {
            max_orders: 4096,
            max_accounts: 16,
            max_markets: 1,
            max_positions: 16,
            max_conditionals: 16,
            liquidation_ring: 64,
            max_orders_per_account: 4096,
            hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
        });
        let mut seq = 0;
        let mut run = |engine: &mut Engine, kind| {
            seq += 1;
            engine.apply(
                &Command {
                    seq,
                    ts_ns: 0,
                    kind,
                },
                &mut Null,
            );
        };
        run(
            &mut engine,
            CommandKind::AddMarket(Box::new(workload::MARKET)),
        );
        for a in 0..2 {
            run(&mut engine, CommandKind::OpenAccount(AccountId(a)));
        }
        let top = 100_000;
        group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
            b.iter(|| {
                for l in 0..k {
                    let kind = CommandKind::NewOrder(NewOrder {
                        account: AccountId(0),
                        market: MarketId(0),
                        client_id: ClientOrderId(l as u64),
                        side: Side::Buy,
                        order_type: OrderType::Limit(Price(top - l)),
                        qty: Qty(1),
                        stp: StpMode::CancelResting,
                        reduce_only: false,
                    });
                    run(&mut engine, kind);
                }
                let sweep = CommandKind::NewOrder(NewOrder {
                    account: AccountId(1),
                    market: MarketId(0),
                    client_id: ClientOrderId(0),
                    side: Side::Sell,
                    order_type: OrderType::Ioc(Price(top - k)),
                    qty: Qty(k),
                    stp: StpMode::CancelResting,
                    reduce_only: false,
                });
                run(&mut engine, sweep);
            });
        });
    }
    group.finish();
}

/// Liquidation: a mark update that liquidates nothing vs one that starts a cascade
/// (a 5% fall over 10,000 accounts, on a fresh copy of the state each time), and the
/// heatmap query.
fn liquidation(c: &mut Criterion) {
    use cascade_bench::cascade::{self, Population, MARKET};
    let pop = Population::new(10_000);
    let setup = cascade::sequence(pop.setup(), 1);
    let mut engine = Engine::new(pop.engine_config());
    for cmd in &setup {
        engine.apply(cmd, &mut Null);
    }
    let mut seq = setup.len() as u64;
    let mark = |seq: u64, price: i64| Command {
        seq,
        ts_ns: 0,
        kind: CommandKind::MarkPrice {
            market: MARKET,
            price: Price(price),
        },
    };
    let mut quiet = engine.clone();
    c.bench_function("liquidation/two_mark_updates_no_liquidation", |b| {
        b.iter(|| {
            seq += 2;
            quiet.apply(&mark(seq, pop.start + 10), &mut Null);
            quiet.apply(&mark(seq + 1, pop.start), &mut Null);
        });
    });
    let crash = mark(seq + 10, pop.start * 95 / 100);
    c.bench_function("liquidation/mark_update_5pct_cascade_10k_accounts", |b| {
        b.iter_batched(
            || engine.clone(),
            |mut e| e.apply(&crash, &mut Null),
            criterion::BatchSize::LargeInput,
        );
    });
    c.bench_function("liquidation/heatmap_query", |b| {
        b.iter(|| {
            let mut lots = 0i64;
            engine.liquidation_heatmap(MARKET, |_, _, long, short| lots += long + short);
            black_box(lots)
        });
    });
}

criterion_group!(benches, book_ops, match_k_levels, liquidation);
criterion_main!(benches);
