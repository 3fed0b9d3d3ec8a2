//! The command and event codecs (`cascade_core::codec`): every value round-trips over the
//! full range of every field, every event the engine emits decodes to itself, and
//! hostile bytes (random, flipped, truncated, extended) are refused with an error and
//! never a panic; whatever decodes re-encodes to exactly the bytes it came from.

use cascade_core::codec::{DecodeError, COMMAND_BYTES_MAX, REJECT_REASONS};
use cascade_core::risk::MAX_TIERS;
use cascade_core::{
    AccountId, AdlMode, CancelReason, ClientOrderId, Command, CommandKind, ConditionalKind,
    ConditionalOrder, Engine, EngineConfig, Event, EventKind, LiquidationConfig, MarketConfig,
    MarketId, NewOrder, OrderId, OrderType, Price, Qty, Rate, RejectReason, RiskConfig, Side,
    StpMode, Tier,
};
use cascade_tests::gen;
use proptest::prelude::*;
use std::fmt::Write;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000)
}

fn encode_event(e: &Event) -> Vec<u8> {
    let mut buf = [0u8; cascade_core::event::EVENT_BYTES_MAX];
    let n = e.encode(&mut buf);
    buf[..n].to_vec()
}

fn encode_command(c: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    c.encode(&mut out);
    out
}

// ---- generators over the full range of every field ------------------------------------

fn account() -> impl Strategy<Value = AccountId> {
    any::<u32>().prop_map(AccountId)
}
fn market() -> impl Strategy<Value = MarketId> {
    any::<u32>().prop_map(MarketId)
}
fn price() -> impl Strategy<Value = Price> {
    any::<i64>().prop_map(Price)
}
fn qty() -> impl Strategy<Value = Qty> {
    any::<i64>().prop_map(Qty)
}
fn order() -> impl Strategy<Value = OrderId> {
    any::<u64>().prop_map(OrderId)
}
fn rate() -> impl Strategy<Value = Rate> {
    any::<i64>().prop_map(Rate::from_bits)
}
fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}
fn stp() -> impl Strategy<Value = StpMode> {
    prop_oneof![
        Just(StpMode::CancelResting),
        Just(StpMode::CancelAggressor),
        Just(StpMode::DecrementBoth)
    ]
}

fn order_type() -> impl Strategy<Value = OrderType> {
    prop_oneof![
        price().prop_map(OrderType::Limit),
        price().prop_map(OrderType::Ioc),
        price().prop_map(OrderType::Fok),
        price().prop_map(OrderType::PostOnly),
        Just(OrderType::Market),
    ]
}

fn new_order() -> impl Strategy<Value = NewOrder> {
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

fn conditional() -> impl Strategy<Value = ConditionalOrder> {
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

fn liquidation() -> impl Strategy<Value = LiquidationConfig> {
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

fn risk() -> impl Strategy<Value = RiskConfig> {
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

fn market_config() -> impl Strategy<Value = MarketConfig> {
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

fn command_kind() -> impl Strategy<Value = CommandKind> {
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

fn command() -> impl Strategy<Value = Command> {
    (any::<u64>(), any::<u64>(), command_kind()).prop_map(|(seq, ts_ns, kind)| Command {
        seq,
        ts_ns,
        kind,
    })
}

fn reject() -> impl Strategy<Value = RejectReason> {
    (0..REJECT_REASONS.len(), any::<i64>()).prop_map(|(i, shortfall)| match REJECT_REASONS[i] {
        RejectReason::InsufficientMargin { .. } => RejectReason::InsufficientMargin { shortfall },
        r => r,
    })
}

fn cancel_reason() -> impl Strategy<Value = CancelReason> {
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
fn order_event() -> impl Strategy<Value = EventKind> {
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
fn risk_event() -> impl Strategy<Value = EventKind> {
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

fn event() -> impl Strategy<Value = Event> {
    (
        any::<u64>(),
        any::<u32>(),
        prop_oneof![order_event(), risk_event()],
    )
        .prop_map(|(seq, index, kind)| Event { seq, index, kind })
}

// ---- properties ----------------------------------------------------------------------

/// Bytes that decode must re-encode to themselves (the encoding is canonical).
fn canonical_if_decoded(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(c) = Command::decode(bytes) {
        prop_assert_eq!(encode_command(&c), bytes);
    }
    if let Ok(e) = Event::decode(bytes) {
        prop_assert_eq!(encode_event(&e), bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn commands_round_trip(c in command(), d in command()) {
        let bytes = encode_command(&c);
        prop_assert!(bytes.len() <= COMMAND_BYTES_MAX);
        prop_assert_eq!(Command::decode(&bytes), Ok(c.clone()));
        // Two in a row: the prefix decoder finds the first and where it ends.
        let mut both = bytes.clone();
        d.encode(&mut both);
        prop_assert_eq!(Command::decode_prefix(&both), Ok((c, bytes.len())));
        prop_assert_eq!(
            Command::decode(&both),
            Err(DecodeError::TrailingBytes { at: bytes.len() })
        );
    }

    #[test]
    fn events_round_trip(e in event()) {
        let bytes = encode_event(&e);
        prop_assert_eq!(Event::decode(&bytes), Ok(e));
    }

    #[test]
    fn random_bytes_never_panic_and_decode_canonically(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        canonical_if_decoded(&bytes)?;
    }

    /// Valid encodings damaged: one byte changed, cut short, or one byte appended.
    #[test]
    fn damaged_encodings_are_refused_or_canonical(
        c in command(), e in event(), at in any::<usize>(), byte in any::<u8>()
    ) {
        for bytes in [encode_command(&c), encode_event(&e)] {
            let i = at % bytes.len();
            let mut flipped = bytes.clone();
            flipped[i] = byte;
            canonical_if_decoded(&flipped)?;
            canonical_if_decoded(&bytes[..i])?;
            let mut longer = bytes.clone();
            longer.push(byte);
            canonical_if_decoded(&longer)?;
        }
        // A command cut anywhere is refused.
        let bytes = encode_command(&c);
        let cut = &bytes[..at % bytes.len()];
        prop_assert!(Command::decode(cut).is_err());
        let bytes = encode_event(&e);
        prop_assert!(Event::decode(&bytes[..at % bytes.len()]).is_err());
    }

    /// Every event the engine emits on generated leveraged streams (fills, margin calls,
    /// liquidations, ADL, funding, conditional orders, rejects) decodes to itself.
    #[test]
    fn engine_events_decode_to_themselves(stream in gen::arb_liquidation_stream(60, false)) {
        let mut engine = Engine::new(EngineConfig {
            max_conditionals: 8,
            ..gen::CONFIG
        });
        let mut events = Vec::new();
        for c in &stream {
            engine.apply(c, &mut events);
            let bytes = encode_command(c);
            prop_assert_eq!(&Command::decode(&bytes), &Ok(c.clone()));
        }
        for e in &events {
            prop_assert_eq!(Event::decode(&encode_event(e)), Ok(*e));
        }
    }
}

#[test]
fn every_reject_reason_has_its_own_code_and_decodes_to_itself() {
    for (i, &r) in REJECT_REASONS.iter().enumerate() {
        let e = Event {
            seq: 1,
            index: 0,
            kind: EventKind::Rejected(r),
        };
        assert_eq!(Event::decode(&encode_event(&e)), Ok(e), "{r:?}");
        for &other in &REJECT_REASONS[..i] {
            assert_ne!(other, r, "listed twice");
        }
    }
}

/// The layout, pinned: a change of encoding shows here with the old and new bytes.
#[test]
fn a_new_order_encodes_to_these_bytes() {
    let c = Command {
        seq: 0x0102,
        ts_ns: 3,
        kind: CommandKind::NewOrder(NewOrder {
            account: AccountId(7),
            market: MarketId(1),
            client_id: ClientOrderId(9),
            side: Side::Sell,
            order_type: OrderType::Ioc(Price(150)),
            qty: Qty(2),
            stp: StpMode::DecrementBoth,
            reduce_only: true,
        }),
    };
    let hex = encode_command(&c).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    assert_eq!(
        hex,
        concat!(
            "0201000000000000", // seq
            "0300000000000000", // ts_ns
            "05",               // NewOrder
            "07000000",         // account
            "01000000",         // market
            "0900000000000000", // client id
            "01",               // sell
            "01",               // IOC
            "9600000000000000", // price 150
            "0200000000000000", // qty
            "02",               // decrement both
            "01",               // reduce-only
        )
    );
    assert_eq!(
        Command::decode(&encode_command(&c)[..20]),
        Err(DecodeError::Truncated { at: 17 })
    );
    let mut bad = encode_command(&c);
    bad[16] = 20;
    assert_eq!(
        Command::decode(&bad),
        Err(DecodeError::BadTag { at: 16, value: 20 })
    );
}

/// The largest command is an `AddMarket` with risk and liquidation parameters, and it
/// takes exactly `COMMAND_BYTES_MAX` bytes.
#[test]
fn the_largest_command_fills_command_bytes_max() {
    let mut cfg = gen::liquidating_markets(false)[1];
    cfg.risk = cfg.risk.map(|r| RiskConfig {
        liquidation: r.liquidation.or(Some(gen::liquidation(AdlMode::Queue))),
        ..r
    });
    let c = Command {
        seq: 1,
        ts_ns: 0,
        kind: CommandKind::AddMarket(Box::new(cfg)),
    };
    assert_eq!(encode_command(&c).len(), COMMAND_BYTES_MAX);
}
