//! Hostile input: every numeric field drawn from the whole `i64`/`u64`/`u32` range
//! (extremes included), against a plain and a leveraged market with wide bounds. The
//! engine must never panic (tests run with overflow checks on, so an unchecked overflow
//! would panic here), must keep its invariants, and must conserve money. The leveraged
//! market liquidates, so hostile marks drive the waterfall too.

use cascade_core::risk::{bps, tier_table};
use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, EngineConfig, EventKind, MarketConfig,
    MarketId, NewOrder, OrderId, OrderType, Price, Qty, Rate, RiskConfig, Side, StpMode,
};
use proptest::prelude::*;

const CONFIG: EngineConfig = EngineConfig {
    max_orders: 32,
    max_accounts: 4,
    max_markets: 3,
    max_positions: 12,
    max_conditionals: 16,
    liquidation_ring: 64,
    max_orders_per_account: 12,
    hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
};

/// Plain: prices 2^20 ± 4,096 (8,193 levels); leveraged: 2^20 ± 25%, tick 8; quantities up to
/// 2^20, OI cap 2^20 lots. Accounts 0 and 1 deposit 2^36 atoms, 2 and 3 only 2^22.
fn markets() -> [MarketConfig; 2] {
    let (tiers, tier_count) = tier_table(&[(1 << 50, bps(100)), (1 << 60, bps(500))]);
    let plain = MarketConfig {
        tick: 1,
        lot_base_atoms: 1,
        min_price: Price((1 << 20) - 4_096),
        max_price: Price((1 << 20) + 4_096),
        max_qty: Qty(1 << 20),
        market_band_bps: 10_000,
        risk: None,
    };
    let risk = RiskConfig {
        max_leverage: 10,
        tiers,
        tier_count,
        maker_fee: bps(-1),
        taker_fee: bps(5),
        vol_lambda: bps(5_000),
        vol_k: Rate::from_bits(16 << 32),
        vol_floor: Rate::ONE,
        vol_cap: Rate::from_bits(2 << 32),
        oi_cap: 1 << 20,
        account_oi_share_bps: 10_000,
        max_mark_move_bps: 10_000,
        liquidation: Some(cascade_core::LiquidationConfig {
            buffer: bps(5_000),
            min_notional: 1 << 30,
            band_bps: 5_000,
            fee_rate: bps(100),
            adl: cascade_core::AdlMode::Queue,
            order_margin: true,
            fund_haircut: bps(2_000),
            unwind_rate: bps(2_500),
            isolated_fund: false,
        }),
    };
    [
        plain,
        MarketConfig {
            // A wide band (±25% of the mark, tick 8: 65,537 levels) so hostile marks can
            // liquidate.
            tick: 8,
            min_price: Price(3 << 18),
            max_price: Price(5 << 18),
            risk: Some(risk),
            ..plain
        },
    ]
}

fn wild_i64() -> impl Strategy<Value = i64> + Clone {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        Just(-1i64),
        Just((1i64 << 20) + 4_096),
        Just((1i64 << 20) + 4_097),
        any::<i64>(),
        1i64..1_000_000,
        1i64..(1 << 20),
    ]
}

/// Mostly near the leveraged market's mark (2^20), on its tick of 8, so orders trade;
/// sometimes anything.
fn price_i64() -> impl Strategy<Value = i64> + Clone {
    prop_oneof![6 => ((1i64 << 17) - 8..(1i64 << 17) + 8).prop_map(|t| t * 8), 1 => wild_i64()]
}

fn arb_command() -> impl Strategy<Value = CommandKind> {
    let account = prop_oneof![8 => 0u32..4, 1 => 4u32..6].prop_map(AccountId);
    let market = prop_oneof![6 => 0u32..2, 1 => 2u32..4].prop_map(MarketId);
    let price = price_i64().prop_map(Price);
    let qty = prop_oneof![6 => 1i64..100, 1 => wild_i64()];
    let amount = prop_oneof![3 => (1i64 << 30)..(1i64 << 40), 1 => wild_i64()];
    let order_type = prop_oneof![
        price.clone().prop_map(OrderType::Limit),
        price.clone().prop_map(OrderType::Ioc),
        price.clone().prop_map(OrderType::Fok),
        price.clone().prop_map(OrderType::PostOnly),
        Just(OrderType::Market),
    ];
    let stp = prop_oneof![
        Just(StpMode::CancelResting),
        Just(StpMode::CancelAggressor),
        Just(StpMode::DecrementBoth)
    ];
    prop_oneof![
           8 => (account.clone(), market.clone(), any::<u64>(), any::<bool>(), order_type, qty.clone(), stp, prop::bool::weighted(0.1))
               .prop_map(|(account, market, client, buy, order_type, qty, stp, reduce_only)| {
                   CommandKind::NewOrder(NewOrder {
                       account,
                       market,
                       client_id: ClientOrderId(client % 16),
                       side: if buy { Side::Buy } else { Side::Sell },
                       order_type,
                       qty: Qty(qty),
                       stp,
                       reduce_only,
                   })
               }),
           1 => (account.clone(), any::<u64>()).prop_map(|(account, id)| CommandKind::Cancel { account, order_id: OrderId(id % 40) }),
           1 => (account.clone(), any::<u64>(), price.clone(), qty)
               .prop_map(|(account, id, price, q)| CommandKind::CancelReplace { account, order_id: OrderId(id % 40), price, qty: Qty(q) }),
           2 => (account.clone(), amount.clone()).prop_map(|(account, amount)| CommandKind::Deposit { account, amount }),
           1 => (account.clone(), amount.clone()).prop_map(|(account, amount)| CommandKind::Withdraw { account, amount }),
           1 => (account.clone(), market.clone(), any::<u32>()).prop_map(|(account, market, leverage)| CommandKind::SetLeverage { account, market, leverage }),
           1 => (account.clone(), market.clone(), any::<bool>()).prop_map(|(account, market, isolated)| CommandKind::SetMarginMode { account, market, isolated }),
           1 => (account.clone(), market.clone(), amount.prop_map(|a| if a % 2 == 0 { a } else { a.saturating_neg() }))
               .prop_map(|(account, market, amount)| CommandKind::TransferIsolated { account, market, amount }),
           2 => (market.clone(), prop_oneof![price.clone(), ((3i64 << 18)..=(5 << 18)).prop_map(Price)])
               .prop_map(|(market, price)| CommandKind::MarkPrice { market, price }),
           2 => (market.clone(), prop_oneof![4 => (-50i64..50).prop_map(bps), 1 => any::<i64>().prop_map(|b| Rate::from_bits(b >> (b & 63)))])
               .prop_map(|(market, rate)| CommandKind::FundingRate { market, rate }),
           1 => (account, proptest::option::of(market)).prop_map(|(account, market)| CommandKind::MassCancel { account, market }),
           1 => wild_i64().prop_map(|amount| CommandKind::InsuranceDeposit {
    market: None,
    amount }),
       ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000), ..ProptestConfig::default() })]

    #[test]
    fn hostile_commands_never_panic_and_keep_invariants(kinds in proptest::collection::vec(arb_command(), 1..60)) {
        let mut engine = Engine::new(CONFIG);
        let mut setup: Vec<CommandKind> = markets().into_iter().map(|m| CommandKind::AddMarket(Box::new(m))).collect();
        setup.extend((0..4).map(|a| CommandKind::OpenAccount(AccountId(a))));
        setup.extend((0..4).map(|a| CommandKind::Deposit { account: AccountId(a), amount: if a < 2 { 1 << 36 } else { 1 << 22 } }));
        setup.push(CommandKind::MarkPrice { market: MarketId(1), price: Price(1 << 20) });
        let mut net = 0i128;
        let mut halted = false; // market 1, the liquidating one
        let mut events = Vec::new();
        let setup_len = setup.len();
        for (i, kind) in setup.into_iter().chain(kinds).enumerate() {
            events.clear();
            let cmd = Command { seq: i as u64, ts_ns: 0, kind };
            engine.apply(&cmd, &mut events);
            prop_assert!(i >= setup_len || cascade_core::rejection(&events).is_none(), "set-up refused: {:?}", events);
            net += cascade_tests::harness::net_inflow(&cmd, &events);
            prop_assert!(engine.verify().is_ok(), "{:?}", engine.verify());
            prop_assert_eq!(engine.money_accounted(), net);
            prop_assert!(engine.fee_ledger() >= 0, "fee ledger {}", engine.fee_ledger());
            for e in &events {
                match e.kind {
                    EventKind::MarketHalted(MarketId(1)) => halted = true,
                    EventKind::MarketResumed(MarketId(1)) => halted = false,
                    _ => {}
                }
            }
            // Fund cash may be negative; its equity may not while solvency could still
            // deleverage it against an opposite holder in the (running) market.
            let s = engine.fund_position(MarketId(1)).map_or(0, |f| f.0);
            let opposed = !halted && s != 0 && (0..CONFIG.max_accounts).any(|a| {
                engine.position(AccountId(a), MarketId(1)).is_some_and(|p| p.size.signum() == -s.signum())
            });
            prop_assert!(!opposed || engine.fund().equity >= 0, "fund {:?}", engine.fund());
            // No pool holding only positions in market 1 (or none) ends with negative
            // equity, and none holding one there is below MM, while it runs.
            for a in (0..CONFIG.max_accounts).map(AccountId) {
                let held = engine.position(a, MarketId(1)).is_some_and(|p| p.size != 0);
                let isolated = engine.position(a, MarketId(1)).is_some_and(|p| p.isolated);
                for market in [None, Some(MarketId(1))] {
                    if market.is_some() != isolated && market.is_some() {
                        continue;
                    }
                    let (equity, mm) = engine.pool_risk(a, market).expect("account");
                    let here = held && market.is_some() == isolated;
                    prop_assert!(halted || equity >= 0, "account {} pool {:?} equity {}", a.0, market, equity);
                    prop_assert!(halted || !here || equity >= mm, "account {} pool {:?} below MM {} < {}", a.0, market, equity, mm);
                }
            }
        }
    }
}

/// The hostile streams must still reach trades, positions and funding, or the test above
/// would only be exercising rejections.
#[test]
fn hostile_streams_reach_fills_positions_and_funding() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut fills, mut positions, mut funding, mut liquidations) = (0, 0, 0, 0);
    let mut reasons = std::collections::BTreeMap::new();
    for _ in 0..2_000 {
        let kinds = proptest::collection::vec(arb_command(), 1..60)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        let mut engine = Engine::new(CONFIG);
        let mut setup: Vec<CommandKind> = markets()
            .into_iter()
            .map(|m| CommandKind::AddMarket(Box::new(m)))
            .collect();
        setup.extend((0..4).map(|a| CommandKind::OpenAccount(AccountId(a))));
        setup.extend((0..4).map(|a| CommandKind::Deposit {
            account: AccountId(a),
            amount: if a < 2 { 1 << 36 } else { 1 << 22 },
        }));
        setup.push(CommandKind::MarkPrice {
            market: MarketId(1),
            price: Price(1 << 20),
        });
        let mut events = Vec::new();
        for (i, kind) in setup.into_iter().chain(kinds).enumerate() {
            engine.apply(
                &Command {
                    seq: i as u64,
                    ts_ns: 0,
                    kind,
                },
                &mut events,
            );
        }
        for e in &events {
            match e.kind {
                EventKind::Fill { .. } => fills += 1,
                EventKind::PositionChanged { .. } => positions += 1,
                EventKind::FundingIndexed { .. } => funding += 1,
                EventKind::LiquidationStarted { .. } => liquidations += 1,
                EventKind::Rejected(r) => {
                    *reasons
                        .entry(format!("{r:?}").chars().take(24).collect::<String>())
                        .or_insert(0) += 1;
                }
                _ => {}
            }
        }
    }
    eprintln!(
        "fills {fills}, position changes {positions}, funding payments {funding}, liquidations {liquidations}; {reasons:?}"
    );
    assert!(
        fills > 100 && positions > 100 && funding > 10 && liquidations > 0,
        "fills {fills}, positions {positions}, funding {funding}, liquidations {liquidations}"
    );
}
