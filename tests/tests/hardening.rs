//! Hardening regressions: hostile values at the edges of the engine's input and query
//! surface (fixed-point extremes, out-of-range ids, per-account capacity, configuration
//! bounds, client-id hashing, the reject encoding). Each test failed before its fix.

use cascade_core::risk::{bps, tier_table};
use cascade_core::{
    AccountId, ClientOrderId, CommandKind, Engine, EngineConfig, Event, EventKind, MarketConfig,
    MarketId, NewOrder, OrderType, Price, Qty, Rate, RejectReason, RiskConfig, Side, StpMode,
};

const M: MarketId = MarketId(0);

/// One leveraged market (tick 1, prices 1..=100,000, 10× max leverage, no volatility
/// scaling), accounts 0..=3 opened with 10^9 atoms each, mark 1,000.
struct H {
    engine: Engine,
    events: Vec<Event>,
    seq: u64,
}

fn risk() -> RiskConfig {
    let (tiers, tier_count) = tier_table(&[(1 << 40, bps(100))]);
    RiskConfig {
        max_leverage: 10,
        tiers,
        tier_count,
        maker_fee: bps(0),
        taker_fee: bps(0),
        vol_lambda: Rate::ZERO,
        vol_k: Rate::ZERO,
        vol_floor: Rate::ONE,
        vol_cap: Rate::ONE,
        oi_cap: 1 << 30,
        account_oi_share_bps: 10_000,
        max_mark_move_bps: 5_000,
        liquidation: None,
    }
}

/// The default test market: tick 1, prices 1..=100,000, max qty 1,000.
fn market() -> MarketConfig {
    MarketConfig {
        tick: 1,
        lot_base_atoms: 1,
        min_price: Price(1),
        max_price: Price(100_000),
        max_qty: Qty(1_000),
        market_band_bps: 1_000,
        risk: Some(risk()),
    }
}

impl H {
    fn new(cfg: EngineConfig) -> H {
        H::with_market(cfg, &market(), 1_000_000_000, Price(1_000))
    }

    /// `market`, accounts 0..=3 each depositing `deposit`, then a mark.
    fn with_market(cfg: EngineConfig, market: &MarketConfig, deposit: i64, mark: Price) -> H {
        let mut h = H {
            engine: Engine::new(cfg),
            events: Vec::new(),
            seq: 0,
        };
        h.ok(CommandKind::AddMarket(Box::new(*market)));
        for a in 0..4 {
            h.ok(CommandKind::OpenAccount(AccountId(a)));
            h.ok(CommandKind::Deposit {
                account: AccountId(a),
                amount: deposit,
            });
        }
        h.ok(CommandKind::MarkPrice {
            market: M,
            price: mark,
        });
        h
    }

    fn run(&mut self, kind: CommandKind) -> Option<RejectReason> {
        self.seq += 1;
        cascade_tests::harness::step(&mut self.engine, self.seq, kind, &mut self.events);
        cascade_core::rejection(&self.events)
    }

    fn ok(&mut self, kind: CommandKind) {
        let k = format!("{kind:?}");
        assert_eq!(self.run(kind), None, "{k}");
    }

    fn order(
        &mut self,
        account: u32,
        client: u64,
        side: Side,
        order_type: OrderType,
        qty: i64,
    ) -> Option<RejectReason> {
        self.run(CommandKind::NewOrder(NewOrder {
            account: AccountId(account),
            market: M,
            client_id: ClientOrderId(client),
            side,
            order_type,
            qty: Qty(qty),
            stp: StpMode::CancelAggressor,
            reduce_only: false,
        }))
    }

    fn limit(&mut self, account: u32, client: u64, side: Side, price: i64) -> Option<RejectReason> {
        self.order(account, client, side, OrderType::Limit(Price(price)), 1)
    }
}

#[test]
fn the_most_negative_funding_rate_is_rejected_not_wrapped() {
    let mut h = H::new(EngineConfig::default());
    // A position, so that a wrapped rate would move money.
    assert_eq!(h.limit(0, 1, Side::Sell, 1_000), None);
    assert_eq!(h.limit(1, 1, Side::Buy, 1_000), None);
    for rate in [Rate::MIN, Rate::MAX, -Rate::ONE - Rate::DELTA] {
        let before = h.engine.money_accounted();
        let collateral = h.engine.account_risk(AccountId(0)).map(|r| r.collateral);
        assert_eq!(
            h.run(CommandKind::FundingRate { market: M, rate }),
            Some(RejectReason::FundingRateTooLarge),
            "rate bits {:#x}",
            rate.to_bits()
        );
        assert_eq!(h.engine.money_accounted(), before);
        assert_eq!(
            h.engine.account_risk(AccountId(0)).map(|r| r.collateral),
            collateral
        );
    }
    // The bounds themselves are accepted.
    h.ok(CommandKind::FundingRate {
        market: M,
        rate: -Rate::ONE,
    });
    h.ok(CommandKind::FundingRate {
        market: M,
        rate: Rate::ONE,
    });
}

#[test]
fn resting_plus_incoming_quantity_beyond_i64_is_a_position_limit_not_an_overflow() {
    // One price (1), `max_qty = i64::MAX`: an IOC order is bounded by no level, so its
    // quantity plus the account's resting buys exceeds `i64` unless widened first.
    let (tiers, tier_count) = tier_table(&[(1 << 61, bps(100))]);
    let risk = RiskConfig {
        tiers,
        tier_count,
        oi_cap: 1 << 61,
        ..risk()
    };
    let one_price = MarketConfig {
        min_price: Price(1),
        max_price: Price(1),
        max_qty: Qty(i64::MAX),
        risk: Some(risk),
        ..market()
    };
    let mut h = H::with_market(EngineConfig::default(), &one_price, i64::MAX, Price(1));
    assert_eq!(
        h.order(0, 1, Side::Buy, OrderType::Limit(Price(1)), 1 << 61),
        None
    );
    assert_eq!(
        h.engine.position(AccountId(0), M).map(|p| p.buy_open),
        Some(1 << 61)
    );
    for (client, order_type) in [(2, OrderType::Ioc(Price(1))), (3, OrderType::Fok(Price(1)))] {
        assert_eq!(
            h.order(0, client, Side::Buy, order_type, i64::MAX),
            Some(RejectReason::PositionLimit),
            "{order_type:?}"
        );
    }
}

#[test]
fn queries_with_out_of_range_ids_answer_none_instead_of_another_accounts_position() {
    let cfg = EngineConfig::default();
    let mut h = H::new(cfg);
    // Account 1 isolated in market 0: slot `1 × max_markets + 0`, which account 0 with
    // market `max_markets` used to alias.
    h.ok(CommandKind::SetMarginMode {
        account: AccountId(1),
        market: M,
        isolated: true,
    });
    assert!(h.engine.isolated_risk(AccountId(1), M).is_some());
    let unknown_markets = [
        MarketId(1),
        MarketId(cfg.max_markets - 1),
        MarketId(cfg.max_markets),
        MarketId(u32::MAX),
    ];
    for a in [AccountId(0), AccountId(1), AccountId(cfg.max_accounts - 1)] {
        for m in unknown_markets {
            assert_eq!(h.engine.isolated_risk(a, m), None, "{a:?} {m:?}");
            assert_eq!(h.engine.position(a, m), None, "{a:?} {m:?}");
            assert_eq!(h.engine.pool_risk(a, Some(m)), None, "{a:?} {m:?}");
            assert_eq!(h.engine.pool_initial(a, Some(m)), None, "{a:?} {m:?}");
            assert_eq!(h.engine.level_orders_of(a, m).count(), 0);
        }
    }
    for a in [AccountId(cfg.max_accounts), AccountId(u32::MAX)] {
        assert_eq!(h.engine.isolated_risk(a, M), None, "{a:?}");
        assert_eq!(h.engine.position(a, M), None, "{a:?}");
        assert_eq!(h.engine.pool_risk(a, None), None, "{a:?}");
        assert_eq!(h.engine.pool_initial(a, None), None, "{a:?}");
        assert_eq!(h.engine.account_risk(a), None, "{a:?}");
    }
}

#[test]
fn an_account_at_its_order_cap_cannot_rest_another_order() {
    let cfg = EngineConfig {
        max_orders_per_account: 3,
        ..EngineConfig::default()
    };
    let mut h = H::new(cfg);
    for client in 1..=3 {
        assert_eq!(h.limit(0, client, Side::Buy, 900 + client as i64), None);
    }
    // A fourth resting order is refused; the pool itself has room.
    assert_eq!(
        h.limit(0, 4, Side::Buy, 800),
        Some(RejectReason::AccountOrderCapacity)
    );
    assert_eq!(
        h.order(0, 4, Side::Sell, OrderType::PostOnly(Price(1_100)), 1),
        Some(RejectReason::AccountOrderCapacity)
    );
    // Other accounts are not affected.
    assert_eq!(h.limit(1, 1, Side::Buy, 800), None);
    // Orders that do not rest pass: an IOC that takes account 1's order.
    assert_eq!(
        h.order(0, 5, Side::Sell, OrderType::Ioc(Price(800)), 1),
        None
    );
    let id = h
        .engine
        .order_by_client(AccountId(0), ClientOrderId(1))
        .expect("resting")
        .id;
    // A cancel-replace keeps its slot: allowed at the cap.
    h.ok(CommandKind::CancelReplace {
        account: AccountId(0),
        order_id: id,
        price: Price(850),
        qty: Qty(2),
    });
    // Cancelling one frees a place.
    h.ok(CommandKind::Cancel {
        account: AccountId(0),
        order_id: id,
    });
    assert_eq!(h.limit(0, 6, Side::Buy, 800), None);
    assert_eq!(
        h.limit(0, 7, Side::Buy, 801),
        Some(RejectReason::AccountOrderCapacity)
    );
}

#[test]
fn a_full_pool_is_reported_before_the_account_cap() {
    let cfg = EngineConfig {
        max_orders: 2,
        max_orders_per_account: 2,
        ..EngineConfig::default()
    };
    let mut h = H::new(cfg);
    assert_eq!(h.limit(0, 1, Side::Buy, 900), None);
    assert_eq!(h.limit(0, 2, Side::Buy, 901), None);
    assert_eq!(
        h.limit(0, 3, Side::Buy, 902),
        Some(RejectReason::OrderCapacity)
    );
}

#[test]
fn invalid_configurations_are_errors_not_aborts() {
    use cascade_core::engine::{MAX_LIQUIDATION_RING, MAX_ORDERS, MAX_POSITION_SLOTS};
    use cascade_core::ConfigError;
    let ok = EngineConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    assert!(Engine::try_new(ok).is_ok());
    let cases = [
        (
            EngineConfig {
                max_orders: 0,
                ..ok
            },
            ConfigError::ZeroCapacity,
        ),
        (
            EngineConfig {
                max_accounts: 0,
                ..ok
            },
            ConfigError::ZeroCapacity,
        ),
        (
            EngineConfig {
                max_markets: 0,
                ..ok
            },
            ConfigError::ZeroCapacity,
        ),
        (
            EngineConfig {
                liquidation_ring: 0,
                ..ok
            },
            ConfigError::ZeroCapacity,
        ),
        (
            EngineConfig {
                max_orders_per_account: 0,
                ..ok
            },
            ConfigError::ZeroCapacity,
        ),
        (
            EngineConfig {
                max_orders: MAX_ORDERS + 1,
                ..ok
            },
            ConfigError::TooManyOrders,
        ),
        (
            EngineConfig {
                max_orders: u32::MAX,
                ..ok
            },
            ConfigError::TooManyOrders,
        ),
        (
            EngineConfig {
                max_accounts: u32::MAX,
                ..ok
            },
            ConfigError::TooManyAccounts,
        ),
        // Positions are sparse (slots for the pairs holding state), so only the slot
        // count is bounded, not accounts × markets.
        (
            EngineConfig {
                max_positions: 0,
                max_conditionals: 16,
                ..ok
            },
            ConfigError::ZeroCapacity,
        ),
        (
            EngineConfig {
                max_positions: MAX_POSITION_SLOTS as u32 + 1,
                max_conditionals: 16,
                ..ok
            },
            ConfigError::TooManyPositions,
        ),
        (
            EngineConfig {
                liquidation_ring: MAX_LIQUIDATION_RING + 1,
                ..ok
            },
            ConfigError::RingTooLarge,
        ),
    ];
    for (cfg, err) in cases {
        assert_eq!(cfg.validate(), Err(err), "{cfg:?}");
        assert_eq!(Engine::try_new(cfg).err(), Some(err), "{cfg:?}");
    }
    let panicked = std::panic::catch_unwind(|| Engine::new(cases[0].0)).is_err();
    assert!(panicked, "Engine::new panics on an invalid configuration");
}

/// Every rejection reason without a payload, and the market and risk config errors.
fn payload_free_reasons() -> Vec<RejectReason> {
    use cascade_core::{MarketConfigError as Mc, RiskConfigError as Rc};
    let mut v = vec![
        RejectReason::UnknownMarket,
        RejectReason::UnknownAccount,
        RejectReason::UnknownOrder,
        RejectReason::AccountExists,
        RejectReason::TooManyMarkets,
        RejectReason::MarketHalted,
        RejectReason::NonPositiveQty,
        RejectReason::QtyTooLarge,
        RejectReason::PriceOffTick,
        RejectReason::PriceOutOfBand,
        RejectReason::NoLiquidity,
        RejectReason::PostOnlyWouldTake,
        RejectReason::DuplicateClientId,
        RejectReason::OrderCapacity,
        RejectReason::AccountOrderCapacity,
        RejectReason::PositionCapacity,
        RejectReason::Overflow,
        RejectReason::NotLeveraged,
        RejectReason::NoMarkPrice,
        RejectReason::NonPositiveAmount,
        RejectReason::CollateralLimit,
        RejectReason::BadLeverage,
        RejectReason::PositionOrOrdersOpen,
        RejectReason::NotIsolated,
        RejectReason::ReduceOnlyWouldIncrease,
        RejectReason::OpenInterestCap,
        RejectReason::AccountOpenInterestCap,
        RejectReason::PositionLimit,
        RejectReason::BadOraclePrint,
        RejectReason::MarkOutOfBand,
        RejectReason::FundingRateTooLarge,
        RejectReason::FundingIndexLimit,
    ];
    for e in [
        Mc::NonPositiveTickOrLot,
        Mc::BadPriceBand,
        Mc::TooManyLevels,
        Mc::BadMaxQty,
        Mc::BadMarketBand,
    ] {
        v.push(RejectReason::InvalidMarket(e));
    }
    for e in [
        Rc::BadLeverage,
        Rc::BadTiers,
        Rc::BadFees,
        Rc::BadVolatility,
        Rc::BadOpenInterest,
        Rc::BadLiquidation,
    ] {
        v.push(RejectReason::InvalidMarket(Mc::Risk(e)));
    }
    v
}

fn encoded(kind: EventKind) -> Vec<u8> {
    let mut buf = [0u8; cascade_core::event::EVENT_BYTES_MAX];
    let n = Event {
        seq: 7,
        index: 0,
        kind,
    }
    .encode(&mut buf);
    buf[..n].to_vec()
}

#[test]
fn every_rejection_encodes_differently_whatever_the_shortfall() {
    assert_eq!(cascade_core::EVENT_ENCODING_VERSION, 4);
    let others = payload_free_reasons();
    // Shortfalls that version 1 (`(18 << 56) ^ shortfall`) encoded as another reason's
    // code, plus the extremes.
    let mut shortfalls = vec![0, 1, -1, i64::MIN, i64::MAX, 18 << 56];
    for code in [1u64, 13, 14, 31, 100, 205] {
        shortfalls.push(((18u64 << 56) ^ code) as i64);
    }
    let mut seen = std::collections::BTreeMap::new();
    let reasons = others.iter().copied().chain(
        shortfalls
            .iter()
            .map(|&shortfall| RejectReason::InsufficientMargin { shortfall }),
    );
    for r in reasons {
        let bytes = encoded(EventKind::Rejected(r));
        if let Some(prev) = seen.insert(bytes, r) {
            panic!("{r:?} encodes like {prev:?}");
        }
    }
    assert_eq!(seen.len(), others.len() + shortfalls.len());
    // The shortfall is written whole, after the reason's code.
    // Version 1 encoded this shortfall as 13, `DuplicateClientId`'s code.
    let x = ((18u64 << 56) ^ 0xd) as i64;
    let bytes = encoded(EventKind::Rejected(RejectReason::InsufficientMargin {
        shortfall: x,
    }));
    assert_eq!(&bytes[bytes.len() - 8..], &x.to_le_bytes());
}
