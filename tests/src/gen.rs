//! Random command streams for property tests: three small markets (one plain, two
//! leveraged), few accounts and ids so that collisions (duplicate client ids,
//! self-trades, unknown orders, capacity, halts, margin shortfalls, caps) happen often.

use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, ConditionalKind, ConditionalOrder,
    EngineConfig, MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty, Rate,
    RiskConfig, Side, StpMode,
};
use proptest::prelude::*;

/// Capacities of the generated engines: small, so the pool and the per-account cap fill up.
pub const CONFIG: EngineConfig = EngineConfig {
    max_orders: 8,
    max_accounts: 5,
    max_markets: 3,
    max_positions: 15,
    max_conditionals: 4,
    liquidation_ring: 64,
    max_orders_per_account: 4,
    hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
};

pub use cascade_core::risk::bps;

/// The leveraged markets' risk parameters: 10× max leverage; tiers at 400 / 900 /
/// 1,500 atoms of notional with 2% / 4% / 8% maintenance; maker −0.02%, taker 0.07%;
/// OI cap 24 lots, 40% of it (9 lots) per account; marks may move at most 20% at a time.
/// Sized so that the tier limit, the account cap and the OI cap each bind sometimes.
pub fn risk() -> RiskConfig {
    let (tiers, tier_count) =
        cascade_core::risk::tier_table(&[(400, bps(200)), (900, bps(400)), (1_500, bps(800))]);
    RiskConfig {
        max_leverage: 10,
        tiers,
        tier_count,
        maker_fee: bps(-2),
        taker_fee: bps(7),
        vol_lambda: bps(2_500),
        vol_k: bps(40_000),
        vol_floor: Rate::ONE,
        vol_cap: Rate::from_num(3),
        oi_cap: 24,
        account_oi_share_bps: 4_000,
        max_mark_move_bps: 2_000,
        liquidation: None,
    }
}

/// Market 0: plain, tick 1 on 100..=200. Market 1: leveraged, tick 5. Market 2:
/// leveraged, tick 1.
pub fn markets() -> [MarketConfig; 3] {
    let base = MarketConfig {
        tick: 1,
        lot_base_atoms: 1,
        min_price: Price(100),
        max_price: Price(200),
        max_qty: Qty(10),
        market_band_bps: 500,
        risk: None,
    };
    [
        base,
        MarketConfig {
            tick: 5,
            risk: Some(risk()),
            ..base
        },
        MarketConfig {
            risk: Some(risk()),
            ..base
        },
    ]
}

/// The set-up prefix: the markets, accounts 0..=3 (4 stays closed, 5 is out of range),
/// 3,000 atoms of collateral each, and marks of 150 in both leveraged markets.
pub fn setup() -> Vec<Command> {
    setup_with(markets(), 3_000, None)
}

/// Liquidation parameters of the generated liquidating markets: buffer 10%, minimum
/// notional 100, band 2%, fee 0.5%.
pub fn liquidation(adl: cascade_core::AdlMode) -> cascade_core::LiquidationConfig {
    cascade_core::LiquidationConfig {
        buffer: bps(1_000),
        min_notional: 100,
        band_bps: 200,
        fee_rate: bps(50),
        adl,
        order_margin: true,
        fund_haircut: bps(1_000),
        unwind_rate: bps(5_000),
        isolated_fund: false,
    }
}

/// [`markets`] with liquidation on: market 1 deleverages pro rata and shares the common
/// insurance fund, market 2 deleverages by queue and has a fund of its own (or, if
/// `mixed`, market 2 stays leveraged without liquidation).
pub fn liquidating_markets(mixed: bool) -> [MarketConfig; 3] {
    let mut m = markets();
    let on = if mixed { 1 } else { 2 };
    let modes = [
        (1, cascade_core::AdlMode::ProRata),
        (2, cascade_core::AdlMode::Queue),
    ];
    for (i, adl) in modes.into_iter().take(on) {
        let mut r = m[i].risk.expect("leveraged");
        r.liquidation = Some(cascade_core::LiquidationConfig {
            isolated_fund: i == 2,
            ..liquidation(adl)
        });
        m[i].risk = Some(r);
    }
    m
}

/// The set-up prefix for `markets` with `deposit` atoms per account and, if given, an
/// insurance fund deposit.
pub fn setup_with(
    markets: [MarketConfig; 3],
    deposit: i64,
    insurance: Option<i64>,
) -> Vec<Command> {
    let mut kinds: Vec<CommandKind> = markets
        .into_iter()
        .map(|m| CommandKind::AddMarket(Box::new(m)))
        .collect();
    kinds.extend((0..4).map(|a| CommandKind::OpenAccount(AccountId(a))));
    kinds.extend((0..4).map(|a| CommandKind::Deposit {
        account: AccountId(a),
        amount: deposit,
    }));
    // The shared fund, and market 2's own (refused, and harmless, where it has none).
    for market in [None, Some(MarketId(2))] {
        kinds.extend(insurance.map(|amount| CommandKind::InsuranceDeposit { market, amount }));
    }
    kinds.extend((1..3).map(|m| CommandKind::MarkPrice {
        market: MarketId(m),
        price: Price(150),
    }));
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
    prop_oneof![20 => 0u32..3, 1 => Just(3u32)].prop_map(MarketId)
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
        (arb_account(), arb_market(), 0u64..8, any::<bool>()),
        (
            arb_order_type(),
            arb_qty(),
            arb_stp(),
            prop::bool::weighted(0.15),
        ),
    )
        .prop_map(
            |((account, market, client, buy), (order_type, qty, stp, reduce_only))| {
                CommandKind::NewOrder(NewOrder {
                    account,
                    market,
                    client_id: ClientOrderId(client),
                    side: if buy { Side::Buy } else { Side::Sell },
                    order_type,
                    qty,
                    stp,
                    reduce_only,
                })
            },
        )
}

/// A conditional order (stop or take-profit, market or limit, sometimes reduce-only), or
/// a cancel of one.
fn arb_conditional() -> impl Strategy<Value = CommandKind> {
    let new = (
        (arb_account(), arb_market(), 0u64..8, any::<bool>()),
        (
            arb_qty(),
            arb_price(),
            any::<bool>(),
            proptest::option::of(arb_price()),
            prop::bool::weighted(0.4),
        ),
    )
        .prop_map(
            |((account, market, client, buy), (qty, trigger, stop, limit, reduce_only))| {
                CommandKind::NewConditional(ConditionalOrder {
                    account,
                    market,
                    client_id: ClientOrderId(client),
                    side: if buy { Side::Buy } else { Side::Sell },
                    qty,
                    trigger,
                    kind: if stop {
                        ConditionalKind::Stop
                    } else {
                        ConditionalKind::TakeProfit
                    },
                    limit,
                    reduce_only,
                    stp: StpMode::CancelResting,
                })
            },
        );
    prop_oneof![
        4 => new,
        1 => (arb_account(), (1u64..=24).prop_map(OrderId))
            .prop_map(|(account, order_id)| CommandKind::CancelConditional { account, order_id }),
    ]
}

fn arb_money_command() -> impl Strategy<Value = CommandKind> {
    prop_oneof![
        3 => (arb_account(), -10i64..3_000).prop_map(|(account, amount)| CommandKind::Deposit { account, amount }),
        4 => (arb_account(), -10i64..4_000).prop_map(|(account, amount)| CommandKind::Withdraw { account, amount }),
        3 => (arb_account(), arb_market(), 0u32..=12)
            .prop_map(|(account, market, leverage)| CommandKind::SetLeverage { account, market, leverage }),
        2 => (arb_account(), arb_market(), any::<bool>())
            .prop_map(|(account, market, isolated)| CommandKind::SetMarginMode { account, market, isolated }),
        3 => (arb_account(), arb_market(), -2_000i64..2_000)
            .prop_map(|(account, market, amount)| CommandKind::TransferIsolated { account, market, amount }),
        10 => (arb_market(), prop_oneof![9 => 125i64..=175, 1 => 90i64..=210])
            .prop_map(|(market, p)| CommandKind::MarkPrice { market, price: Price(p) }),
        2 => (arb_market(), prop_oneof![9 => -300i64..=300, 1 => -20_000i64..=20_000])
            .prop_map(|(market, bp)| CommandKind::FundingRate { market, rate: bps(bp) }),
        1 => (proptest::option::of(arb_market()), -5i64..300)
            .prop_map(|(market, amount)| CommandKind::InsuranceDeposit { market, amount }),
    ]
}

/// One random command body (sequence numbers are added by [`arb_stream`]).
pub fn arb_kind() -> impl Strategy<Value = CommandKind> {
    let id = (1u64..=16).prop_map(OrderId);
    prop_oneof![
        60 => arb_new_order(),
        15 => (arb_account(), id.clone()).prop_map(|(account, order_id)| CommandKind::Cancel { account, order_id }),
        5 => (arb_account(), 0u64..8)
            .prop_map(|(account, c)| CommandKind::CancelByClientId { account, client_id: ClientOrderId(c) }),
        25 => (arb_account(), id, arb_price(), arb_qty())
            .prop_map(|(account, order_id, price, qty)| CommandKind::CancelReplace { account, order_id, price, qty }),
        2 => (arb_account(), proptest::option::of(arb_market()))
            .prop_map(|(account, market)| CommandKind::MassCancel { account, market }),
        1 => arb_market().prop_map(CommandKind::HaltMarket),
        4 => arb_market().prop_map(CommandKind::ResumeMarket),
        1 => arb_account().prop_map(CommandKind::OpenAccount),
        27 => arb_money_command(),
        14 => arb_conditional(),
    ]
}

/// The set-up prefix followed by `1..=max_len` random commands, sequenced from 1.
pub fn arb_stream(max_len: usize) -> impl Strategy<Value = Vec<Command>> {
    proptest::collection::vec(arb_kind(), 1..=max_len).prop_map(|kinds| sequence(setup(), kinds))
}

/// A stream on [`liquidating_markets`]: small deposits (60..=400 atoms per account, so
/// mark moves liquidate), an insurance fund of 0..=200 atoms, then random commands.
pub fn arb_liquidation_stream(max_len: usize, mixed: bool) -> impl Strategy<Value = Vec<Command>> {
    stream_on(&liquidating_markets(mixed), liquidation_steps(), max_len)
}

/// [`arb_liquidation_stream`] with the leveraged markets' band widened down to 1 (the
/// trigger indexes' keys then reach below 0) and many funding payments (±1 bp to
/// ±5%: several accrue as drift before a rebase), so funding alone drives pools down and
/// the indexes must follow it.
pub fn arb_funding_stream(max_len: usize) -> impl Strategy<Value = Vec<Command>> {
    let mut markets = liquidating_markets(false);
    for m in &mut markets[1..] {
        m.min_price = Price(1);
    }
    let mut steps = liquidation_steps();
    let funding = (1u32..3, -500i64..=500).prop_map(|(m, bp)| {
        vec![CommandKind::FundingRate {
            market: MarketId(m),
            rate: bps(bp),
        }]
    });
    steps.push((4, funding.boxed()));
    stream_on(&markets, steps, max_len)
}

/// The weighted steps of a liquidation stream: random commands, trades, stop-losses,
/// take-profits and mark moves.
fn liquidation_steps() -> Vec<(u32, BoxedStrategy<Vec<CommandKind>>)> {
    vec![
        (3, arb_kind().prop_map(|k| vec![k]).boxed()),
        (2, arb_trade().boxed()),
        (1, arb_stop_loss().prop_map(|k| vec![k]).boxed()),
        (1, arb_take_profit().prop_map(|k| vec![k]).boxed()),
        (
            1,
            (1u32..3, 125i64..=175)
                .prop_map(|(m, p)| {
                    vec![CommandKind::MarkPrice {
                        market: MarketId(m),
                        price: Price(p),
                    }]
                })
                .boxed(),
        ),
    ]
}

/// Small deposits, an optional insurance fund, then `steps` on `markets`.
fn stream_on(
    markets: &[MarketConfig; 3],
    steps: Vec<(u32, BoxedStrategy<Vec<CommandKind>>)>,
    max_len: usize,
) -> impl Strategy<Value = Vec<Command>> {
    let markets = *markets;
    (
        60i64..=400,
        prop_oneof![Just(None), (1i64..=200).prop_map(Some)],
        proptest::collection::vec(proptest::strategy::Union::new_weighted(steps), 1..=max_len),
    )
        .prop_map(move |(deposit, fund, steps)| {
            // Smaller top-ups, so that accounts stay close to their margin.
            let kinds = steps.into_iter().flatten().map(|k| match k {
                CommandKind::Deposit { account, amount } => CommandKind::Deposit {
                    account,
                    amount: amount / 20,
                },
                k => k,
            });
            sequence(setup_with(markets, deposit, fund), kinds.collect())
        })
}

/// A reduce-only stop (or take-profit) of a trading account in a liquidating market, with
/// a trigger inside the marks the streams move through: stop clusters that fire, and that
/// liquidations cancel.
fn arb_stop_loss() -> impl Strategy<Value = CommandKind> {
    (
        0u32..4,
        1u32..3,
        any::<bool>(),
        any::<bool>(),
        26i64..=34,
        1i64..=9,
        8u64..12,
    )
        .prop_map(|(account, market, buy, stop, t, qty, client)| {
            CommandKind::NewConditional(ConditionalOrder {
                account: AccountId(account),
                market: MarketId(market),
                client_id: ClientOrderId(client),
                side: if buy { Side::Buy } else { Side::Sell },
                qty: Qty(qty),
                trigger: Price(t * 5),
                kind: if stop {
                    ConditionalKind::Stop
                } else {
                    ConditionalKind::TakeProfit
                },
                limit: None,
                reduce_only: true,
                stp: StpMode::CancelResting,
            })
        })
}

/// A resting reduce-only limit (a take-profit) of a trading account: trimmed when the
/// position shrinks under it.
fn arb_take_profit() -> impl Strategy<Value = CommandKind> {
    (
        0u32..4,
        1u32..3,
        any::<bool>(),
        27i64..=33,
        1i64..=9,
        12u64..16,
    )
        .prop_map(|(account, market, buy, p, qty, client)| {
            CommandKind::NewOrder(NewOrder {
                account: AccountId(account),
                market: MarketId(market),
                client_id: ClientOrderId(client),
                side: if buy { Side::Buy } else { Side::Sell },
                order_type: OrderType::Limit(Price(p * 5)),
                qty: Qty(qty),
                stp: StpMode::CancelResting,
                reduce_only: true,
            })
        })
}

/// A resting order of one account and an IOC of another that crosses it: builds
/// positions quickly.
fn arb_trade() -> impl Strategy<Value = Vec<CommandKind>> {
    (
        0u32..4,
        0u32..4,
        1u32..3,
        any::<bool>(),
        28i64..=32,
        1i64..=9,
        0u64..8,
    )
        .prop_map(|(maker, taker, market, buy, p, qty, client)| {
            let side = if buy { Side::Buy } else { Side::Sell };
            let order = |account, side, order_type| {
                CommandKind::NewOrder(NewOrder {
                    account: AccountId(account),
                    market: MarketId(market),
                    client_id: ClientOrderId(client),
                    side,
                    order_type,
                    qty: Qty(qty),
                    stp: StpMode::CancelResting,
                    reduce_only: false,
                })
            };
            let price = Price(p * 5);
            vec![
                order(maker, side, OrderType::Limit(price)),
                order(taker, side.opposite(), OrderType::Ioc(price)),
            ]
        })
}

fn sequence(mut cmds: Vec<Command>, kinds: Vec<CommandKind>) -> Vec<Command> {
    let start = cmds.len() as u64 + 1;
    cmds.extend(kinds.into_iter().enumerate().map(|(i, kind)| Command {
        seq: start + i as u64,
        ts_ns: i as u64,
        kind,
    }));
    cmds
}
