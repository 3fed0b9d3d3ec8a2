//! Position slots (`EngineConfig::max_positions`): a command that would need a slot when
//! none is free is refused with `PositionCapacity` and changes nothing; slots come back
//! when a pair's state returns to the default and are reused.

use cascade_core::{
    AccountId, ClientOrderId, CommandKind, Engine, EngineConfig, Event, EventKind, MarketId,
    NewOrder, OrderType, Price, Qty, RejectReason, Side, StpMode,
};
use cascade_tests::gen;
use cascade_tests::harness::step;
use std::fmt::Write;

/// The generated markets (1 and 2 leveraged), accounts 0..=3 funded, marks set, and
/// `slots` position slots.
fn engine(slots: u32) -> (Engine, u64) {
    let mut e = Engine::new(EngineConfig {
        max_positions: slots,
        max_conditionals: 16,
        ..gen::CONFIG
    });
    let mut events = Vec::new();
    let setup = gen::setup();
    for c in &setup {
        step(&mut e, c.seq, c.kind.clone(), &mut events);
    }
    (e, setup.len() as u64)
}

fn limit(account: u32, market: u32, client: u64, side: Side, price: i64) -> CommandKind {
    CommandKind::NewOrder(NewOrder {
        account: AccountId(account),
        market: MarketId(market),
        client_id: ClientOrderId(client),
        side,
        order_type: OrderType::Limit(Price(price)),
        qty: Qty(1),
        stp: StpMode::CancelResting,
        reduce_only: false,
    })
}

struct Run {
    engine: Engine,
    seq: u64,
    events: Vec<Event>,
}

impl Run {
    fn new(slots: u32) -> Run {
        let (engine, seq) = engine(slots);
        Run {
            engine,
            seq,
            events: Vec::new(),
        }
    }

    fn run(&mut self, kind: CommandKind) -> &[Event] {
        self.seq += 1;
        step(&mut self.engine, self.seq, kind, &mut self.events);
        &self.events
    }

    /// Everything a refused command must leave alone.
    fn snapshot(&self) -> String {
        let e = &self.engine;
        let mut s = format!(
            "{} {} {} {}",
            e.positions_held(),
            e.open_orders(),
            e.money_accounted(),
            e.fee_ledger()
        );
        for a in 0..5 {
            for m in 0..3 {
                let _ = write!(s, " {:?}", e.position(AccountId(a), MarketId(m)));
            }
            let _ = write!(s, " {:?}", e.account_risk(AccountId(a)));
        }
        for m in 0..3 {
            for side in [Side::Buy, Side::Sell] {
                let _ = write!(s, " {:?}", e.best(MarketId(m), side));
            }
        }
        s
    }
}

fn rejected(events: &[Event]) -> bool {
    events.len() == 1 && events[0].kind == EventKind::Rejected(RejectReason::PositionCapacity)
}

#[test]
fn full_arena_refuses_new_pairs_and_changes_nothing() {
    let mut r = Run::new(1);
    assert_eq!(r.engine.positions_held(), 0);
    // Account 0 rests a buy in market 2: its pair holds the only slot.
    let ev = r.run(limit(0, 2, 1, Side::Buy, 150)).to_vec();
    assert!(matches!(ev[0].kind, EventKind::Accepted { .. }), "{ev:?}");
    assert_eq!(r.engine.positions_held(), 1);
    let before = r.snapshot();
    // Account 1's sell would fill (a new position) or rest: refused before matching.
    assert!(rejected(r.run(limit(1, 2, 1, Side::Sell, 150))));
    // So are the settings that give a new pair state.
    for kind in [
        CommandKind::SetLeverage {
            account: AccountId(1),
            market: MarketId(1),
            leverage: 5,
        },
        CommandKind::SetMarginMode {
            account: AccountId(1),
            market: MarketId(1),
            isolated: true,
        },
    ] {
        assert!(rejected(r.run(kind)));
    }
    assert_eq!(r.snapshot(), before, "a refused command changed the engine");
    // Account 0 holds the slot: more orders in its pair need nothing new.
    let ev = r.run(limit(0, 2, 2, Side::Buy, 145)).to_vec();
    assert!(matches!(ev[0].kind, EventKind::Accepted { .. }), "{ev:?}");
    // Plain markets and cross mode on an unused pair need no slot.
    let ev = r.run(limit(1, 0, 3, Side::Buy, 150)).to_vec();
    assert!(matches!(ev[0].kind, EventKind::Accepted { .. }), "{ev:?}");
    let ev = r
        .run(CommandKind::SetMarginMode {
            account: AccountId(1),
            market: MarketId(1),
            isolated: false,
        })
        .to_vec();
    assert!(
        matches!(ev[0].kind, EventKind::MarginModeSet { .. }),
        "{ev:?}"
    );
    assert_eq!(r.engine.positions_held(), 1);
}

#[test]
fn slots_are_given_back_and_reused_when_positions_close() {
    let mut r = Run::new(2);
    // Accounts 0 and 1 trade one lot in market 1: two pairs hold positions.
    r.run(limit(0, 1, 1, Side::Buy, 150));
    r.run(limit(1, 1, 1, Side::Sell, 150));
    assert_eq!(r.engine.positions_held(), 2);
    assert!(rejected(r.run(limit(2, 1, 1, Side::Buy, 140))));
    // They trade it back: both flat, both slots free again.
    r.run(limit(1, 1, 2, Side::Buy, 150));
    r.run(limit(0, 1, 2, Side::Sell, 150));
    assert_eq!(
        r.engine.position(AccountId(0), MarketId(1)).unwrap().size,
        0
    );
    assert_eq!(r.engine.positions_held(), 0);
    // Accounts 2 and 3 reuse them, in the other market.
    r.run(limit(2, 2, 1, Side::Buy, 150));
    let ev = r.run(limit(3, 2, 1, Side::Sell, 150)).to_vec();
    assert!(
        ev.iter().any(|e| matches!(e.kind, EventKind::Fill { .. })),
        "{ev:?}"
    );
    assert_eq!(r.engine.positions_held(), 2);
    // A cancelled order gives its slot back too; a leverage setting keeps one.
    let mut r = Run::new(1);
    r.run(limit(0, 1, 1, Side::Buy, 140));
    assert_eq!(r.engine.positions_held(), 1);
    r.run(CommandKind::MassCancel {
        account: AccountId(0),
        market: None,
    });
    assert_eq!(r.engine.positions_held(), 0);
    r.run(CommandKind::SetLeverage {
        account: AccountId(3),
        market: MarketId(2),
        leverage: 4,
    });
    assert_eq!(r.engine.positions_held(), 1);
    assert!(rejected(r.run(limit(0, 1, 2, Side::Buy, 140))));
}

/// Isolated mode, resting orders and order-margin links live in a second arena that is
/// preallocated for `max_orders` + 4,096 pairs and grows past that, up to
/// `max_positions`: 5,000 isolated pairs with `max_orders` = 8 are all accepted, every
/// one reads back isolated with its bucket, and all of it is given back when the pairs
/// return to cross.
#[test]
fn extras_grow_past_their_reserve_and_come_back() {
    const ACCOUNTS: u32 = 2_500;
    let mut e = Engine::new(EngineConfig {
        max_accounts: ACCOUNTS,
        max_positions: 2 * ACCOUNTS,
        max_conditionals: 16,
        ..gen::CONFIG
    });
    let mut events = Vec::new();
    let mut seq = 0;
    let mut run = |e: &mut Engine, kind: CommandKind| {
        seq += 1;
        events.clear();
        e.apply(
            &cascade_core::Command {
                seq,
                ts_ns: 0,
                kind,
            },
            &mut events,
        );
        assert!(
            !events
                .iter()
                .any(|ev| matches!(ev.kind, EventKind::Rejected(_))),
            "{events:?}"
        );
    };
    for m in gen::markets() {
        run(&mut e, CommandKind::AddMarket(Box::new(m)));
    }
    let pairs = || (0..ACCOUNTS).flat_map(|a| [(a, 1), (a, 2)]);
    for a in 0..ACCOUNTS {
        run(&mut e, CommandKind::OpenAccount(AccountId(a)));
        run(
            &mut e,
            CommandKind::Deposit {
                account: AccountId(a),
                amount: 100,
            },
        );
    }
    for (a, m) in pairs() {
        let (account, market) = (AccountId(a), MarketId(m));
        run(
            &mut e,
            CommandKind::SetMarginMode {
                account,
                market,
                isolated: true,
            },
        );
        run(
            &mut e,
            CommandKind::TransferIsolated {
                account,
                market,
                amount: 10 + i64::from(m),
            },
        );
    }
    e.verify().expect("engine invariants with the extras grown");
    assert_eq!(e.positions_held(), 2 * ACCOUNTS);
    for (a, m) in pairs() {
        let p = e.position(AccountId(a), MarketId(m)).expect("in range");
        assert!(p.isolated, "account {a} market {m}");
        assert_eq!(p.bucket, 10 + i128::from(m), "account {a} market {m}");
    }
    for (a, m) in pairs() {
        let (account, market) = (AccountId(a), MarketId(m));
        run(
            &mut e,
            CommandKind::TransferIsolated {
                account,
                market,
                amount: -(10 + i64::from(m)),
            },
        );
        run(
            &mut e,
            CommandKind::SetMarginMode {
                account,
                market,
                isolated: false,
            },
        );
    }
    e.verify()
        .expect("engine invariants with the extras given back");
    assert_eq!(e.positions_held(), 0);
    assert_eq!(e.account_risk(AccountId(7)).expect("open").collateral, 100);
}
