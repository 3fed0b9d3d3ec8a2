//! `cascade-bench snapshot [--accounts N] [--orders M]`: what a snapshot costs at a given
//! state size. One leveraged market (the demo's), `N` accounts opened and funded, `M`
//! resting orders spread over them (bids below the mark, asks above, never crossing),
//! and every tenth account trading one lot with its neighbour so positions exist too.
//! Timed on one thread, best of 3: `Engine::snapshot` into a reused buffer (the pause
//! the engine thread would take), `Engine::restore` of it, and `Engine::state_hash`.
//! Last line: `accounts= orders= positions= bytes= snapshot_ms= restore_ms=
//! state_hash_ms=`.

use crate::Args;
use cascade_bench::workload;
use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, EngineConfig, HashSink, MarketId,
    NewOrder, OrderType, Price, Qty, Side, StpMode,
};
use std::time::Instant;

/// Runs the subcommand.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = Args::parse(args, &["--accounts", "--orders"], &[])?;
    let accounts: u32 = args.value("--accounts")?.unwrap_or(1_000_000);
    let orders: u32 = args.value("--orders")?.unwrap_or(1_000_000);
    if accounts < 2 {
        return Err("--accounts must be at least 2".into());
    }
    let capacity = orders
        .checked_add(accounts)
        .ok_or("--accounts plus --orders must fit in a u32")?;
    let mut engine = Engine::try_new(EngineConfig {
        max_orders: capacity,
        max_accounts: accounts,
        max_markets: 1,
        max_positions: accounts,
        max_conditionals: 0,
        liquidation_ring: 1_024,
        max_orders_per_account: capacity,
        hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
    })
    .map_err(|e| format!("{e:?}"))?;
    let mut seq = 0;
    let mut apply = |engine: &mut Engine, kind| {
        seq += 1;
        engine.apply(
            &Command {
                seq,
                ts_ns: 0,
                kind,
            },
            &mut HashSink::default(),
        );
    };
    apply(
        &mut engine,
        CommandKind::AddMarket(Box::new(workload::leveraged_market())),
    );
    apply(
        &mut engine,
        CommandKind::MarkPrice {
            market: MarketId(0),
            price: Price(100_000),
        },
    );
    for a in 0..accounts {
        apply(&mut engine, CommandKind::OpenAccount(AccountId(a)));
        apply(
            &mut engine,
            CommandKind::Deposit {
                account: AccountId(a),
                amount: workload::DEPOSIT,
            },
        );
    }
    let order = |a: u32, client: u64, side: Side, price: i64| {
        CommandKind::NewOrder(NewOrder {
            account: AccountId(a),
            market: MarketId(0),
            client_id: ClientOrderId(client),
            side,
            order_type: OrderType::Limit(Price(price)),
            qty: Qty(1),
            stp: StpMode::CancelResting,
            reduce_only: false,
        })
    };
    // Neighbours trade one lot at the mark: positions.
    for a in (0..accounts - 1).step_by(10) {
        apply(&mut engine, order(a, 1, Side::Buy, 100_000));
        apply(&mut engine, order(a + 1, 1, Side::Sell, 100_000));
    }
    for i in 0..orders {
        let (side, price) = if i % 2 == 0 {
            (Side::Buy, 99_999 - i64::from(i / 2 % 40_000))
        } else {
            (Side::Sell, 100_001 + i64::from(i / 2 % 40_000))
        };
        apply(
            &mut engine,
            order(i % accounts, 2 + u64::from(i), side, price),
        );
    }
    let mut buf = Vec::new();
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    };
    let snapshot_ms = best(&mut || {
        buf.clear();
        engine.snapshot(&mut buf);
    });
    let mut restored = None;
    let restore_ms = best(&mut || restored = Some(Engine::restore(&buf)));
    let restored = restored
        .expect("ran")
        .map_err(|e| format!("restore failed: {e:?}"))?;
    if restored.state_hash() != engine.state_hash() {
        return Err("the restored engine's state hash differs".into());
    }
    let state_hash_ms = best(&mut || {
        std::hint::black_box(engine.state_hash());
    });
    println!(
        "accounts={accounts} orders={} positions={} bytes={} snapshot_ms={snapshot_ms:.1} restore_ms={restore_ms:.1} state_hash_ms={state_hash_ms:.1}",
        engine.open_orders(),
        engine.positions_held(),
        buf.len()
    );
    Ok(())
}
