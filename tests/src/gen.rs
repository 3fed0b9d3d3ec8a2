//! Random command streams for property tests: small markets, few accounts and ids so
//! that collisions (duplicate client ids, self-trades, unknown orders, capacity, halts)
//! happen often.

use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, EngineConfig, MarketConfig, MarketId, NewOrder,
    OrderId, OrderType, Price, Qty, Side, StpMode,
};
use proptest::prelude::*;

/// Capacities of the generated engines: small, so the pool fills up.
pub const CONFIG: EngineConfig = EngineConfig {
    max_orders: 12,
    max_accounts: 5,
    max_markets: 3,
};

/// Two markets: tick 1 on 100..=200, and tick 5 on 100..=200 (so some prices are off tick).
pub fn markets() -> [MarketConfig; 2] {
    let base = MarketConfig {
        tick: 1,
        lot_base_atoms: 1,
        min_price: Price(100),
        max_price: Price(200),
        max_qty: Qty(10),
        market_band_bps: 500,
    };
    [base, MarketConfig { tick: 5, ..base }]
}

/// The set-up prefix: the markets, then accounts 0..=3 (4 stays closed, 5 is out of range).
pub fn setup() -> Vec<Command> {
    let mut kinds: Vec<CommandKind> = markets().into_iter().map(CommandKind::AddMarket).collect();
    kinds.extend((0..4).map(|a| CommandKind::OpenAccount(AccountId(a))));
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Command {
            seq: i as u64 + 1,
            ts_ns: 0,
            kind,
        })
        .collect()
}

fn arb_price() -> impl Strategy<Value = Price> + Clone {
    prop_oneof![8 => (28i64..=32).prop_map(|t| t * 5), 4 => 140i64..=160, 1 => 95i64..=205]
        .prop_map(Price)
}

fn arb_qty() -> impl Strategy<Value = Qty> {
    prop_oneof![20 => 1i64..=10, 1 => -1i64..=12].prop_map(Qty)
}

fn arb_account() -> impl Strategy<Value = AccountId> {
    prop_oneof![30 => 0u32..4, 1 => 4u32..=5].prop_map(AccountId)
}

fn arb_market() -> impl Strategy<Value = MarketId> {
    prop_oneof![20 => 0u32..2, 1 => Just(2u32)].prop_map(MarketId)
}

fn arb_order_type() -> impl Strategy<Value = OrderType> {
    let p = arb_price();
    prop_oneof![
        8 => p.clone().prop_map(OrderType::Limit),
        3 => p.clone().prop_map(OrderType::Ioc),
        2 => p.clone().prop_map(OrderType::Fok),
        2 => p.prop_map(OrderType::PostOnly),
        2 => Just(OrderType::Market),
    ]
}

fn arb_stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![
        Just(StpMode::CancelResting),
        Just(StpMode::CancelAggressor),
        Just(StpMode::DecrementBoth)
    ]
}

fn arb_new_order() -> impl Strategy<Value = CommandKind> {
    (
        arb_account(),
        arb_market(),
        0u64..8,
        any::<bool>(),
        arb_order_type(),
        arb_qty(),
        arb_stp(),
    )
        .prop_map(|(account, market, client, buy, order_type, qty, stp)| {
            CommandKind::NewOrder(NewOrder {
                account,
                market,
                client_id: ClientOrderId(client),
                side: if buy { Side::Buy } else { Side::Sell },
                order_type,
                qty,
                stp,
            })
        })
}

/// One random command body (sequence numbers are added by [`arb_stream`]).
pub fn arb_kind() -> impl Strategy<Value = CommandKind> {
    let id = (1u64..=16).prop_map(OrderId);
    prop_oneof![
        60 => arb_new_order(),
        15 => (arb_account(), id.clone()).prop_map(|(account, order_id)| CommandKind::Cancel { account, order_id }),
        25 => (arb_account(), id, arb_price(), arb_qty())
            .prop_map(|(account, order_id, price, qty)| CommandKind::CancelReplace { account, order_id, price, qty }),
        2 => (arb_account(), proptest::option::of(arb_market()))
            .prop_map(|(account, market)| CommandKind::MassCancel { account, market }),
        1 => arb_market().prop_map(CommandKind::HaltMarket),
        4 => arb_market().prop_map(CommandKind::ResumeMarket),
        1 => arb_account().prop_map(CommandKind::OpenAccount),
    ]
}

/// The set-up prefix followed by `1..=max_len` random commands, sequenced from 1.
pub fn arb_stream(max_len: usize) -> impl Strategy<Value = Vec<Command>> {
    proptest::collection::vec(arb_kind(), 1..=max_len).prop_map(|kinds| {
        let mut cmds = setup();
        let start = cmds.len() as u64 + 1;
        cmds.extend(kinds.into_iter().enumerate().map(|(i, kind)| Command {
            seq: start + i as u64,
            ts_ns: i as u64,
            kind,
        }));
        cmds
    })
}
