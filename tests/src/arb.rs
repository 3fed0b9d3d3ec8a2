//! Generators over the full range of every field of every command and event (for the
//! codec and text-log round trips), unlike `gen`, which aims commands at a small engine.

use cascade_core::codec::REJECT_REASONS;
use cascade_core::risk::MAX_TIERS;
use cascade_core::{
    AccountId, AdlMode, CancelReason, ClientOrderId, Command, CommandKind, ConditionalKind,
    ConditionalOrder, Event, EventKind, LiquidationConfig, MarketConfig, MarketId, NewOrder,
    OrderId, OrderType, Price, Qty, Rate, RejectReason, RiskConfig, Side, StpMode, Tier,
};
use proptest::prelude::*;

/// Any account id.
pub fn account() -> impl Strategy<Value = AccountId> {
    any::<u32>().prop_map(AccountId)
}
/// Any market id.
pub fn market() -> impl Strategy<Value = MarketId> {
    any::<u32>().prop_map(MarketId)
}
/// Any price.
pub fn price() -> impl Strategy<Value = Price> {
    any::<i64>().prop_map(Price)
}
/// Any quantity.
pub fn qty() -> impl Strategy<Value = Qty> {
    any::<i64>().prop_map(Qty)
}
/// Any order id.
pub fn order() -> impl Strategy<Value = OrderId> {
    any::<u64>().prop_map(OrderId)
}
/// Any rate (all 64 bits).
pub fn rate() -> impl Strategy<Value = Rate> {
    any::<i64>().prop_map(Rate::from_bits)
}
/// Either side.
pub fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}
/// Any self-trade prevention mode.
pub fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![
        Just(StpMode::CancelResting),
        Just(StpMode::CancelAggressor),
        Just(StpMode::DecrementBoth)
    ]
}

/// Any order type with any price.
pub fn order_type() -> impl Strategy<Value = OrderType> {
    prop_oneof![
        price().prop_map(OrderType::Limit),
        price().prop_map(OrderType::Ioc),
        price().prop_map(OrderType::Fok),
        price().prop_map(OrderType::PostOnly),
        Just(OrderType::Market),
    ]
}

/// Any new order.
pub fn new_order() -> impl Strategy<Value = NewOrder> {
    (
        (account(), market(), any::<u64>(), side()),
        (order_type(), qty(), stp(), any::<bool>()),
    )
        .prop_map(
            |((account, market, client, side), (order_type, qty, stp, reduce_only))| NewOrder {
                account,
                market,
                client_id: ClientOrderId(client),
                side,
                order_type,
                qty,
                stp,
                reduce_only,
            },
        )
}

/// Any conditional order.
pub fn conditional() -> impl Strategy<Value = ConditionalOrder> {
    (
        (account(), market(), any::<u64>(), side(), qty(), price()),
        (
            any::<bool>(),
            proptest::option::of(price()),
            any::<bool>(),
            stp(),
        ),
    )
        .prop_map(
            |((account, market, client, side, qty, trigger), (stop, limit, reduce_only, stp))| {
                ConditionalOrder {
                    account,
                    market,
                    client_id: ClientOrderId(client),
                    side,
                    qty,
                    trigger,
                    kind: if stop {
                        ConditionalKind::Stop
                    } else {
                        ConditionalKind::TakeProfit
                    },
                    limit,
                    reduce_only,
                    stp,
                }
            },
        )
}

/// Any liquidation parameters.
pub fn liquidation() -> impl Strategy<Value = LiquidationConfig> {
    (
        (rate(), any::<i64>(), any::<u32>(), rate(), any::<bool>()),
        (any::<bool>(), rate(), rate(), any::<bool>()),
    )
        .prop_map(
            |((buffer, min_notional, band_bps, fee_rate, queue), (om, haircut, unwind, iso))| {
                LiquidationConfig {
                    buffer,
                    min_notional,
                    band_bps,
                    fee_rate,
                    adl: if queue {
                        AdlMode::Queue
                    } else {
                        AdlMode::ProRata
                    },
                    order_margin: om,
                    fund_haircut: haircut,
                    unwind_rate: unwind,
                    isolated_fund: iso,
                }
            },
        )
}

/// Any risk parameters, all eight tiers.
pub fn risk() -> impl Strategy<Value = RiskConfig> {
    let tiers = proptest::collection::vec((any::<i64>(), rate()), MAX_TIERS);
    (
        (any::<u32>(), tiers, any::<u8>()),
        proptest::collection::vec(rate(), 6),
        (any::<i64>(), any::<u32>(), any::<u32>()),
        proptest::option::of(liquidation()),
    )
        .prop_map(|((max_leverage, t, tier_count), r, (oi, share, mv), liq)| {
            let mut tiers = [Tier::default(); MAX_TIERS];
            for (slot, (max_notional, mm_rate)) in tiers.iter_mut().zip(t) {
                *slot = Tier {
                    max_notional,
                    mm_rate,
                };
            }
            RiskConfig {
                max_leverage,
                tiers,
                tier_count,
                maker_fee: r[0],
                taker_fee: r[1],
                vol_lambda: r[2],
                vol_k: r[3],
                vol_floor: r[4],
                vol_cap: r[5],
                oi_cap: oi,
                account_oi_share_bps: share,
                max_mark_move_bps: mv,
                liquidation: liq,
            }
        })
}

/// Any market configuration, with or without risk.
pub fn market_config() -> impl Strategy<Value = MarketConfig> {
    (
        (
            any::<i64>(),
            any::<i64>(),
            price(),
            price(),
            qty(),
            any::<u32>(),
        ),
        proptest::option::of(risk()),
    )
        .prop_map(|((tick, lot, lo, hi, max_qty, band), risk)| MarketConfig {
            tick,
            lot_base_atoms: lot,
            min_price: lo,
            max_price: hi,
            max_qty,
            market_band_bps: band,
            risk,
        })
}

/// Any command kind.
pub fn command_kind() -> impl Strategy<Value = CommandKind> {
    let opt_market = || proptest::option::of(market());
    prop_oneof![
        market_config().prop_map(|c| CommandKind::AddMarket(Box::new(c))),
        market().prop_map(CommandKind::HaltMarket),
        market().prop_map(CommandKind::ResumeMarket),
        account().prop_map(CommandKind::OpenAccount),
        new_order().prop_map(CommandKind::NewOrder),
        (account(), order())
            .prop_map(|(account, order_id)| CommandKind::Cancel { account, order_id }),
        (account(), any::<u64>()).prop_map(|(account, c)| CommandKind::CancelByClientId {
            account,
            client_id: ClientOrderId(c)
        }),
        (account(), order(), price(), qty()).prop_map(|(account, order_id, price, qty)| {
            CommandKind::CancelReplace {
                account,
                order_id,
                price,
                qty,
            }
        }),
        (account(), opt_market())
            .prop_map(|(account, market)| CommandKind::MassCancel { account, market }),
        (opt_market(), any::<i64>())
            .prop_map(|(market, amount)| CommandKind::InsuranceDeposit { market, amount }),
        (account(), any::<i64>())
            .prop_map(|(account, amount)| CommandKind::Deposit { account, amount }),
        (account(), any::<i64>())
            .prop_map(|(account, amount)| CommandKind::Withdraw { account, amount }),
        (account(), market(), any::<u32>()).prop_map(|(account, market, leverage)| {
            CommandKind::SetLeverage {
                account,
                market,
                leverage,
            }
        }),
        (account(), market(), any::<bool>()).prop_map(|(account, market, isolated)| {
            CommandKind::SetMarginMode {
                account,
                market,
                isolated,
            }
        }),
        (account(), market(), any::<i64>()).prop_map(|(account, market, amount)| {
            CommandKind::TransferIsolated {
                account,
                market,
                amount,
            }
        }),
        (market(), price()).prop_map(|(market, price)| CommandKind::MarkPrice { market, price }),
        (market(), rate()).prop_map(|(market, rate)| CommandKind::FundingRate { market, rate }),
        conditional().prop_map(CommandKind::NewConditional),
        (account(), order())
            .prop_map(|(account, order_id)| CommandKind::CancelConditional { account, order_id }),
    ]
}

/// Any command.
pub fn command() -> impl Strategy<Value = Command> {
    (any::<u64>(), any::<u64>(), command_kind()).prop_map(|(seq, ts_ns, kind)| Command {
        seq,
        ts_ns,
        kind,
    })
}

/// Any rejection (any shortfall).
pub fn reject() -> impl Strategy<Value = RejectReason> {
    (0..REJECT_REASONS.len(), any::<i64>()).prop_map(|(i, shortfall)| match REJECT_REASONS[i] {
        RejectReason::InsufficientMargin { .. } => RejectReason::InsufficientMargin { shortfall },
        r => r,
    })
}

/// Any cancel reason.
pub fn cancel_reason() -> impl Strategy<Value = CancelReason> {
    prop_oneof![
        Just(CancelReason::User),
        Just(CancelReason::MassCancel),
        Just(CancelReason::Unfilled),
        Just(CancelReason::FillOrKill),
        Just(CancelReason::SelfTrade),
        Just(CancelReason::Liquidation),
        Just(CancelReason::Margin),
        Just(CancelReason::ReduceOnly),
    ]
}

/// Order-related event kinds.
pub fn order_event() -> impl Strategy<Value = EventKind> {
    let big = any::<i128>;
    prop_oneof![
        market().prop_map(EventKind::MarketAdded),
        market().prop_map(EventKind::MarketHalted),
        market().prop_map(EventKind::MarketResumed),
        account().prop_map(EventKind::AccountOpened),
        reject().prop_map(EventKind::Rejected),
        (
            order(),
            account(),
            any::<u64>(),
            market(),
            side(),
            price(),
            qty()
        )
            .prop_map(|(order_id, account, c, market, side, price, qty)| {
                EventKind::Accepted {
                    order_id,
                    account,
                    client_id: ClientOrderId(c),
                    market,
                    side,
                    price,
                    qty,
                }
            }),
        (
            (market(), order(), account(), order(), account(), side()),
            (price(), qty(), any::<i64>(), any::<i64>(), any::<bool>())
        )
            .prop_map(
                |((market, mo, ma, to, ta, ts), (price, qty, mf, tf, liq))| {
                    EventKind::Fill {
                        market,
                        maker_order: mo,
                        maker_account: ma,
                        taker_order: to,
                        taker_account: ta,
                        taker_side: ts,
                        price,
                        qty,
                        maker_fee: mf,
                        taker_fee: tf,
                        liquidation: liq,
                    }
                }
            ),
        (order(), account(), qty(), qty(), cancel_reason()).prop_map(
            |(order_id, account, qty, remaining, reason)| EventKind::Cancelled {
                order_id,
                account,
                qty,
                remaining,
                reason,
            }
        ),
        (order(), price(), qty(), any::<bool>()).prop_map(|(order_id, price, qty, kept)| {
            EventKind::Replaced {
                order_id,
                price,
                qty,
                kept_priority: kept,
            }
        }),
        (market(), side(), price(), qty(), any::<u32>()).prop_map(
            |(market, side, price, qty, orders)| EventKind::Level {
                market,
                side,
                price,
                qty,
                orders,
            }
        ),
        (account(), any::<i64>(), big()).prop_map(|(account, amount, collateral)| {
            EventKind::Deposited {
                account,
                amount,
                collateral,
            }
        }),
        (account(), any::<i64>(), big()).prop_map(|(account, amount, collateral)| {
            EventKind::Withdrawn {
                account,
                amount,
                collateral,
            }
        }),
        (order(), market(), side(), price(), qty()).prop_map(
            |(order_id, market, side, price, qty)| EventKind::FundOrder {
                order_id,
                market,
                side,
                price,
                qty,
            }
        ),
        (order(), account(), market(), side(), price(), qty()).prop_map(
            |(order_id, account, market, side, trigger, qty)| EventKind::ConditionalAccepted {
                order_id,
                account,
                market,
                side,
                trigger,
                qty,
            }
        ),
        (order(), account(), market()).prop_map(|(order_id, account, market)| {
            EventKind::ConditionalTriggered {
                order_id,
                account,
                market,
            }
        }),
        (order(), reject())
            .prop_map(|(order_id, reason)| EventKind::ConditionalRejected { order_id, reason }),
        (order(), account(), cancel_reason()).prop_map(|(order_id, account, reason)| {
            EventKind::ConditionalCancelled {
                order_id,
                account,
                reason,
            }
        }),
    ]
}

/// Margin, funding and liquidation event kinds.
pub fn risk_event() -> impl Strategy<Value = EventKind> {
    let big = any::<i128>;
    let opt_market = || proptest::option::of(market());
    prop_oneof![
        (account(), market(), any::<u32>()).prop_map(|(account, market, leverage)| {
            EventKind::LeverageSet {
                account,
                market,
                leverage,
            }
        }),
        (account(), market(), any::<bool>()).prop_map(|(account, market, isolated)| {
            EventKind::MarginModeSet {
                account,
                market,
                isolated,
            }
        }),
        (account(), market(), any::<i64>(), big()).prop_map(|(account, market, amount, bucket)| {
            EventKind::IsolatedTransferred {
                account,
                market,
                amount,
                bucket,
            }
        }),
        (market(), price(), any::<i64>()).prop_map(|(market, price, scale_bits)| {
            EventKind::MarkUpdated {
                market,
                price,
                scale_bits,
            }
        }),
        (market(), big(), big()).prop_map(|(market, delta, index)| EventKind::FundingIndexed {
            market,
            delta,
            index,
        }),
        (account(), market(), any::<i64>()).prop_map(|(account, market, amount)| {
            EventKind::FundingPaid {
                account,
                market,
                amount,
            }
        }),
        (
            account(),
            market(),
            any::<i64>(),
            big(),
            any::<i64>(),
            any::<i64>()
        )
            .prop_map(|(account, market, size, cost, realised, funding)| {
                EventKind::PositionChanged {
                    account,
                    market,
                    size,
                    cost,
                    realised,
                    funding,
                }
            }),
        (account(), opt_market(), big(), big()).prop_map(|(account, market, equity, mm)| {
            EventKind::MarginCall {
                account,
                market,
                equity,
                maintenance: mm,
            }
        }),
        (account(), opt_market(), big(), big()).prop_map(|(account, market, equity, mm)| {
            EventKind::LiquidationStarted {
                account,
                market,
                equity,
                maintenance: mm,
            }
        }),
        (order(), account(), market(), side(), price(), qty()).prop_map(
            |(order_id, account, market, side, price, qty)| EventKind::LiquidationOrder {
                order_id,
                account,
                market,
                side,
                price,
                qty,
            }
        ),
        (account(), market(), qty(), price()).prop_map(|(account, market, qty, price)| {
            EventKind::Backstop {
                account,
                market,
                qty,
                price,
            }
        }),
        (market(), account(), account(), qty(), price()).prop_map(
            |(market, account, counterparty, qty, price)| EventKind::AdlFill {
                market,
                account,
                counterparty,
                qty,
                price,
            }
        ),
        (account(), opt_market(), any::<i64>(), big()).prop_map(
            |(account, market, fee, equity)| EventKind::LiquidationFinished {
                account,
                market,
                fee,
                equity,
            }
        ),
        (opt_market(), big(), big(), big()).prop_map(|(fund, balance, change, equity)| {
            EventKind::InsuranceFund {
                fund,
                balance,
                change,
                equity,
            }
        }),
        (account(), opt_market(), big(), big()).prop_map(
            |(account, market, amount, socialised)| EventKind::BadDebt {
                account,
                market,
                amount,
                socialised,
            }
        ),
    ]
}

/// Any event.
pub fn event() -> impl Strategy<Value = Event> {
    (
        any::<u64>(),
        any::<u32>(),
        prop_oneof![order_event(), risk_event()],
    )
        .prop_map(|(seq, index, kind)| Event { seq, index, kind })
}
