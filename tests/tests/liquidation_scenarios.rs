//! Hand-checked liquidation scenarios, run against both the engine and the reference
//! model (every command's events must agree). Every expected number is worked out in
//! the comments from the formulas in docs/SEMANTICS.md ("Liquidation", "Conditional
//! orders").
//!
//! Common set-up: markets with one maintenance tier of 2.5% (the rate is
//! `bps(250)` = 0.0249999999..., so MM = ceil(notional × 0.025 − ε)), 20× max leverage,
//! no fees, no volatility scaling (scale 1), liquidation buffer 0, minimum notional 0,
//! band 1% (bps(100) = 0.0099999999...), liquidation fee 1%. Marks start at 1,000.

use cascade_core::risk::{bps, tier_table};
use cascade_core::{
    AccountId, AdlMode, CancelReason, ClientOrderId, Command, CommandKind, ConditionalKind,
    ConditionalOrder, Engine, EngineConfig, Event, EventKind, LiquidationConfig, MarketConfig,
    MarketId, NewOrder, OrderId, OrderType, Price, Qty, Rate, RejectReason, RiskConfig, Side,
    StpMode,
};
use cascade_tests::reference::RefEngine;

fn risk(adl: AdlMode) -> RiskConfig {
    let (tiers, tier_count) = tier_table(&[(1_000_000_000, bps(250))]);
    RiskConfig {
        max_leverage: 20,
        tiers,
        tier_count,
        maker_fee: Rate::ZERO,
        taker_fee: Rate::ZERO,
        vol_lambda: Rate::ZERO,
        vol_k: Rate::ZERO,
        vol_floor: Rate::ONE,
        vol_cap: Rate::ONE,
        oi_cap: 1_000_000,
        account_oi_share_bps: 10_000,
        max_mark_move_bps: 5_000,
        liquidation: Some(LiquidationConfig {
            buffer: Rate::ZERO,
            min_notional: 0,
            band_bps: 100,
            fee_rate: bps(100),
            adl,
            order_margin: true,
            fund_haircut: Rate::ZERO,
            unwind_rate: Rate::ZERO,
            isolated_fund: false,
        }),
    }
}

/// Drives the engine and the reference model with the same commands and requires the
/// same events from both: every hand-checked number below holds for both.
struct H {
    engine: Engine,
    reference: RefEngine,
    events: Vec<Event>,
    seq: u64,
    client: u64,
}

impl H {
    /// `markets` leveraged markets (tick 1, prices 1..=100,000), accounts 0..=9 open.
    fn new(markets: u32, adl: AdlMode) -> H {
        H::with((0..markets).map(|_| risk(adl)).collect())
    }

    /// One market per risk configuration, accounts 0..=9 open.
    fn with(risks: Vec<RiskConfig>) -> H {
        let mut h = H {
            engine: Engine::new(EngineConfig::default()),
            reference: RefEngine::new(EngineConfig::default()),
            events: Vec::new(),
            seq: 0,
            client: 0,
        };
        for (m, r) in risks.into_iter().enumerate() {
            let m = m as u32;
            let cfg = MarketConfig {
                tick: 1,
                lot_base_atoms: 1,
                min_price: Price(1),
                max_price: Price(100_000),
                max_qty: Qty(1_000),
                market_band_bps: 1_000,
                risk: Some(r),
            };
            h.ok(CommandKind::AddMarket(Box::new(cfg)));
            h.mark(m, 1_000);
        }
        for a in 0..10 {
            h.ok(CommandKind::OpenAccount(AccountId(a)));
        }
        h
    }

    fn run(&mut self, kind: CommandKind) -> &[Event] {
        self.seq += 1;
        let cmd = Command {
            seq: self.seq,
            ts_ns: 0,
            kind: kind.clone(),
        };
        cascade_tests::harness::step(&mut self.engine, self.seq, kind, &mut self.events);
        assert_eq!(
            self.reference.apply(&cmd),
            self.events,
            "the reference model disagrees on {cmd:?}"
        );
        &self.events
    }

    fn ok(&mut self, kind: CommandKind) {
        let k = format!("{kind:?}");
        let events = self.run(kind);
        assert_eq!(cascade_core::rejection(events), None, "{k}");
    }

    fn mark(&mut self, m: u32, price: i64) {
        self.ok(CommandKind::MarkPrice {
            market: MarketId(m),
            price: Price(price),
        });
    }

    fn deposit(&mut self, a: u32, amount: i64) {
        self.ok(CommandKind::Deposit {
            account: AccountId(a),
            amount,
        });
    }

    fn isolate(&mut self, a: u32, m: u32, bucket: i64) {
        self.ok(CommandKind::SetMarginMode {
            account: AccountId(a),
            market: MarketId(m),
            isolated: true,
        });
        self.ok(CommandKind::TransferIsolated {
            account: AccountId(a),
            market: MarketId(m),
            amount: bucket,
        });
    }

    fn order(&mut self, a: u32, m: u32, side: Side, order_type: OrderType, qty: i64) {
        self.client += 1;
        self.ok(CommandKind::NewOrder(NewOrder {
            account: AccountId(a),
            market: MarketId(m),
            client_id: ClientOrderId(self.client),
            side,
            order_type,
            qty: Qty(qty),
            stp: StpMode::CancelResting,
            reduce_only: false,
        }));
    }

    /// `maker` rests `qty` at 1,000 on the opposite side of `taker`, who takes it.
    fn trade(&mut self, m: u32, taker: u32, maker: u32, taker_side: Side, qty: i64) {
        self.order(
            maker,
            m,
            taker_side.opposite(),
            OrderType::Limit(Price(1_000)),
            qty,
        );
        self.order(taker, m, taker_side, OrderType::Ioc(Price(1_000)), qty);
    }

    fn size(&self, a: u32, m: u32) -> i64 {
        self.engine
            .position(AccountId(a), MarketId(m))
            .expect("position")
            .size
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.events.iter().map(|e| e.kind).collect()
    }
}

fn fills(events: &[EventKind]) -> Vec<(i64, i64, bool)> {
    events
        .iter()
        .filter_map(|e| match *e {
            EventKind::Fill {
                price,
                qty,
                liquidation,
                ..
            } => Some((price.0, qty.0, liquidation)),
            _ => None,
        })
        .collect()
}

fn adl_fills(events: &[EventKind]) -> Vec<(u32, i64, i64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            EventKind::AdlFill {
                counterparty,
                qty,
                price,
                ..
            } => Some((counterparty.0, qty.0, price.0)),
            _ => None,
        })
        .collect()
}

/// Isolated long of 20 lots at 1,000 with a 1,100 bucket; account 2 is short; account
/// 3 bids 10 @ 960 and 100 @ `deep_bid`.
fn isolated_long(adl: AdlMode, deep_bid: i64) -> H {
    let mut h = H::new(1, adl);
    h.deposit(1, 5_000);
    h.isolate(1, 0, 1_100);
    h.deposit(2, 1_000_000);
    h.deposit(3, 1_000_000);
    // IM = 20 × 1,000 / 20 = 1,000, plus the fee reserve of 2 atoms per lot: 1,040 ≤ 1,100.
    h.trade(0, 1, 2, Side::Buy, 20);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(960)), 10);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(deep_bid)), 100);
    h
}

#[test]
fn isolated_long_is_liquidated_partially() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    h.mark(0, 955);
    let ev = h.kinds();
    // Equity = 1,100 + 20 × (955 − 1,000) = 200; MM = ceil(19,100 × 0.025 − ε) = 478.
    assert!(ev.contains(&EventKind::MarginCall {
        account: AccountId(1),
        market: Some(MarketId(0)),
        equity: 200,
        maintenance: 478,
    }));
    // Bankruptcy price 955 − floor(200 / 20) = 945. Depth (478 − 200) / 478 = 0.5816;
    // band ceil(ceil(955 × 0.01 − ε) × 1.5816) = ceil(10 × 1.5816) = 16 → 939; the limit
    // is the higher of band and bankruptcy price: 945. Size against the book within it
    // (buffer 0, so the target is MM: T = T_m = 478): the 960 bids are 5 better than the
    // mark, so q lots there satisfy 20 × (200 + 5q) + 478q ≥ 20 × 478 from
    // q = ceil(5,560 / 578) = 10 (at 9: 4,900 + 4,302 < 9,560).
    assert!(ev.contains(&EventKind::LiquidationOrder {
        order_id: cascade_core::OrderId(5),
        account: AccountId(1),
        market: MarketId(0),
        side: Side::Sell,
        price: Price(945),
        qty: Qty(10),
    }));
    // Fills 10 @ 960 and stops there, paying no taker fee (no maker rebate here).
    assert_eq!(fills(&ev), vec![(960, 10, true)]);
    // Realised 9,600 − 10,000 = −400 → bucket 700; 10 lots left: equity
    // 700 + 10 × 955 − 10,000 = 250 ≥ MM ceil(9,550 × 0.025 − ε) = 239: no second order.
    // Fee: ceil(ceil(9,600 × 0.01 − ε) × 1.5816) = ceil(96 × 1.5816) = 152, capped at
    // equity − target = 11 (buffer 0: the target is MM).
    assert_eq!(h.size(1, 0), 10);
    assert!(ev.contains(&EventKind::LiquidationFinished {
        account: AccountId(1),
        market: Some(MarketId(0)),
        fee: 11,
        equity: 239,
    }));
    assert_eq!(h.engine.insurance_fund(), 11);
    assert_eq!(
        h.engine.pool_risk(AccountId(1), Some(MarketId(0))),
        Some((239, 239))
    );
}

#[test]
fn cross_account_with_two_markets_liquidates_the_moved_market_only() {
    let mut h = H::new(2, AdlMode::Queue);
    h.deposit(1, 2_000);
    h.deposit(2, 1_000_000);
    h.deposit(3, 1_000_000);
    // Cross: long 20 in market 0 and long 10 in market 1, both at 1,000.
    h.trade(0, 1, 2, Side::Buy, 20);
    h.trade(1, 1, 2, Side::Buy, 10);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(925)), 100);
    h.mark(0, 930);
    let ev = h.kinds();
    // Equity = 2,000 + 20 × (930 − 1,000) = 600; MM = ceil(18,600 × 0.025 − ε) +
    // ceil(10,000 × 0.025 − ε) = 465 + 250 = 715; depth 115 / 715 = 0.1608.
    assert!(ev.contains(&EventKind::MarginCall {
        account: AccountId(1),
        market: None,
        equity: 600,
        maintenance: 715,
    }));
    // Market 0 first (its MM 465 is the larger). Limit max(930 − ceil(10 × 1.1608),
    // 930 − floor(600 / 20)) = max(918, 900) = 918. Size against the 925 bids (5 below
    // the mark): 20 × (600 − 5q) + 465q ≥ 20 × 715 from q = ceil(2,300 / 365) = 7.
    // Fills 7 @ 925: realised 6,475 − 7,000 = −525 → collateral 1,475; equity
    // 1,475 + 13 × 930 − 13,000 = 565 ≥ MM ceil(12,090 × 0.025 − ε) + 250 = 303 + 250
    // = 553: one order is enough.
    assert_eq!(fills(&ev), vec![(925, 7, true)]);
    let orders: Vec<_> = ev
        .iter()
        .filter_map(|e| match *e {
            EventKind::LiquidationOrder { price, qty, .. } => Some((price.0, qty.0)),
            _ => None,
        })
        .collect();
    assert_eq!(orders, vec![(918, 7)]);
    assert_eq!((h.size(1, 0), h.size(1, 1)), (13, 10));
    // Fee: ceil(ceil(6,475 × 0.01 − ε) × 1.1608) = ceil(65 × 1.1608) = 76, capped so
    // the pool keeps its target (buffer 0: its MM 553): 565 − 553 = 12.
    assert!(ev.contains(&EventKind::LiquidationFinished {
        account: AccountId(1),
        market: None,
        fee: 12,
        equity: 553,
    }));
    assert_eq!(h.engine.insurance_fund(), 12);
}

#[test]
fn a_gap_through_bankruptcy_is_taken_over_by_the_insurance_fund() {
    let mut h = isolated_long(AdlMode::Queue, 900);
    h.ok(CommandKind::InsuranceDeposit {
        market: None,
        amount: 10_000,
    });
    h.ok(CommandKind::CancelByClientId {
        account: AccountId(3),
        client_id: ClientOrderId(3), // the 960 bid
    });
    h.mark(0, 930);
    let ev = h.kinds();
    // Equity = 1,100 − 1,400 = −300 < 0: depth 1, the whole position at the bankruptcy
    // price 930 − floor(−300 / 20) = 945. The best bid is 900: nothing fills, and the
    // same order is not sent twice.
    assert!(fills(&ev).is_empty());
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, EventKind::LiquidationOrder { .. }))
            .count(),
        1
    );
    // The fund takes the 20 lots at 945, booked at the mark 930: it pays 20 × 15 = 300.
    assert!(ev.contains(&EventKind::Backstop {
        account: AccountId(1),
        market: MarketId(0),
        qty: Qty(20),
        price: Price(945),
    }));
    assert!(ev.contains(&EventKind::InsuranceFund {
        fund: None,
        balance: 9_700,
        change: -300,
        // 9,700 + 20 × 930 − 18,600: the position is worth its cost at the mark.
        equity: 9_700,
    }));
    // The account ends flat at exactly zero: 1,100 + 20 × 945 − 20,000 = 0; no fee left.
    assert_eq!(h.size(1, 0), 0);
    assert_eq!(h.engine.fund_position(MarketId(0)), Some((20, 18_600)));
    assert!(ev.contains(&EventKind::LiquidationFinished {
        account: AccountId(1),
        market: Some(MarketId(0)),
        fee: 0,
        equity: 0,
    }));
    assert!(adl_fills(&ev).is_empty());
}

/// The gap scenario with three profitable shorts: account 2 short 20 (100,000 deposit),
/// account 4 short 5 (2,000), account 5 short 5 (5,000); account 6 long 10; and an
/// insurance fund of `fund`.
fn adl_scenario(adl: AdlMode, fund: i64) -> H {
    let mut h = H::new(1, adl);
    h.deposit(1, 5_000);
    h.isolate(1, 0, 1_100);
    for (a, d) in [
        (2, 100_000),
        (3, 1_000_000),
        (4, 2_000),
        (5, 5_000),
        (6, 100_000),
    ] {
        h.deposit(a, d);
    }
    h.trade(0, 1, 2, Side::Buy, 20);
    h.order(4, 0, Side::Sell, OrderType::Limit(Price(1_000)), 5);
    h.order(5, 0, Side::Sell, OrderType::Limit(Price(1_000)), 5);
    h.order(6, 0, Side::Buy, OrderType::Ioc(Price(1_000)), 10);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(900)), 100);
    if fund > 0 {
        h.ok(CommandKind::InsuranceDeposit {
            market: None,
            amount: fund,
        });
    }
    h.mark(0, 930);
    h
}

#[test]
fn an_empty_fund_deleverages_in_queue_rank_order() {
    let h = adl_scenario(AdlMode::Queue, 0);
    let ev = h.kinds();
    // Ranks at mark 930 (PnL% × effective leverage): account 4: upnl 350, 350 / 5,000 =
    // 7% × 4,650 / 2,350 = 0.139; account 5: 7% × 4,650 / 5,350 = 0.061; account 2:
    // 7% × 18,600 / 101,400 = 0.013. The fund covers nothing (it would pay 15 per lot),
    // so 20 lots are deleveraged at the bankruptcy price 945: 5 + 5 + 10.
    assert_eq!(adl_fills(&ev), vec![(4, 5, 945), (5, 5, 945), (2, 10, 945)]);
    assert_eq!((h.size(2, 0), h.size(4, 0), h.size(5, 0)), (-10, 0, 0));
    assert_eq!(h.engine.insurance_fund(), 0);
    assert_eq!(h.size(1, 0), 0);
}

#[test]
fn adl_takes_only_what_the_fund_cannot_cover_in_both_modes() {
    for (mode, expected) in [
        // Queue: rank order 4, 5, 2; lots per account.
        (AdlMode::Queue, [(2, 4), (4, 5), (5, 5)]),
        // Pro rata over 30 profitable lots: floor(14 × 20/30) = 9, floor(14 × 5/30) = 2
        // and 2; the one lot rounding left goes by rank, to account 4.
        (AdlMode::ProRata, [(2, 9), (4, 3), (5, 2)]),
    ] {
        // A fund of 100 pays for floor(100 / 15) = 6 lots (90 atoms): 14 lots are left.
        let h = adl_scenario(mode, 100);
        let ev = h.kinds();
        assert!(ev.contains(&EventKind::Backstop {
            account: AccountId(1),
            market: MarketId(0),
            qty: Qty(6),
            price: Price(945),
        }));
        assert_eq!(h.engine.insurance_fund(), 10);
        let fills = adl_fills(&ev);
        let lots_of = |a: u32| -> i64 { fills.iter().filter(|f| f.0 == a).map(|f| f.1).sum() };
        assert_eq!(expected.map(|(a, _)| (a, lots_of(a))), expected, "{mode:?}");
        // Deleveraged notional = exactly the uncovered lots at the bankruptcy price.
        let notional: i64 = fills.iter().map(|&(_, q, p)| q * p).sum();
        assert_eq!(notional, 14 * 945, "{mode:?}");
        assert_eq!(h.size(1, 0), 0);
    }
}

#[test]
fn a_mark_move_in_a_market_without_liquidation_still_triggers_the_cross_pool() {
    // Market 1 is leveraged but never liquidates; the cross account also holds market 0.
    let quiet = RiskConfig {
        liquidation: None,
        ..risk(AdlMode::Queue)
    };
    let mut h = H::with(vec![risk(AdlMode::Queue), quiet]);
    h.deposit(1, 2_000);
    h.deposit(2, 1_000_000);
    h.deposit(3, 1_000_000);
    h.trade(0, 1, 2, Side::Buy, 20);
    h.trade(1, 1, 2, Side::Buy, 10);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(990)), 100);
    h.mark(1, 850);
    let ev = h.kinds();
    // Equity = 2,000 + 10 × (850 − 1,000) = 500; MM = ceil(20,000 × 0.025 − ε) +
    // ceil(8,500 × 0.025 − ε) = 500 + 213 = 713: below, though market 0 did not move.
    assert!(ev.contains(&EventKind::MarginCall {
        account: AccountId(1),
        market: None,
        equity: 500,
        maintenance: 713,
    }));
    // Only market 0 is liquidated. Limit 1,000 − ceil(10 × 1.2987) = 987 (bankruptcy
    // 1,000 − floor(500 / 20) = 975 is lower). Size against the 990 bids (10 below the
    // mark): 20 × (500 − 10q) + 500q ≥ 20 × 713 from q = ceil(4,260 / 300) = 15. Fills
    // 15 @ 990 (realised −150): equity 1,850 − 1,500 = 350 ≥ MM ceil(5,000 × 0.025 − ε)
    // + 213 = 338. Fee: ceil(ceil(14,850 × 0.01 − ε) × (1 + 213 / 713)) =
    // ceil(149 × 1.2987) = 194, capped at the target: 350 − 338 = 12.
    assert_eq!(h.size(1, 1), 10);
    assert_eq!(h.size(1, 0), 5);
    assert_eq!(fills(&ev), vec![(990, 15, true)]);
    assert!(ev.contains(&EventKind::LiquidationFinished {
        account: AccountId(1),
        market: None,
        fee: 12,
        equity: 338,
    }));
    let (equity, mm) = h.engine.pool_risk(AccountId(1), None).expect("account");
    assert!(equity >= mm, "{equity} < {mm}");
}

#[test]
fn what_if_paths_run_on_a_copy_and_triggers_bound_the_first_liquidation() {
    let h = isolated_long(AdlMode::Queue, 950);
    // Brute force over marks: the highest mark at which the isolated long (bucket 1,100,
    // 20 lots at 1,000) is below MM is 969: equity 1,100 − 20 × 31 = 480 < MM
    // ceil(19,380 × 0.025 − ε) = 485; at 970: 500 ≥ 485.
    let (long, short) = h
        .engine
        .nearest_triggers(MarketId(0))
        .expect("liquidating market");
    let key = long.expect("an indexed long").0;
    // The key is conservative (≥ 969) and tight: 17 atoms of rounding slack over
    // 20 × 0.975 atoms per tick is less than one tick, plus the ceiling: ≤ 971.
    assert!((969..=971).contains(&key), "{key}");
    // Account 2's short (1,000,000 deposit, 20 lots at 1,000): the lowest mark below MM
    // is 49,757 (equity 1,020,000 − 20 × 49,757 = 24,860 < MM ceil(24,878.5 − ε) =
    // 24,879; at 49,756: 24,880 ≥ 24,878). The key is at or below it, within 2 ticks.
    let short = short.expect("an indexed short").0;
    assert!((49_755..=49_757).contains(&short), "{short}");
    // The partial-liquidation scenario, as a what-if on a copy.
    let r = h
        .engine
        .simulate_marks(MarketId(0), &[Price(980), Price(955)]);
    assert_eq!(
        (r.marks_applied, r.liquidations, r.liquidated_lots),
        (2, 1, 10)
    );
    assert_eq!(
        (r.fund_start, r.fund_end, r.backstop_lots, r.adl_fills),
        (0, 11, 0, 0)
    );
    assert_eq!(r.top_before.0, Some(Price(960)));
    assert_eq!(
        r.top_after.0,
        Some(Price(950)),
        "the liquidation took the 960 bids"
    );
    // The engine itself is untouched.
    assert_eq!((h.size(1, 0), h.engine.insurance_fund()), (20, 0));
}

/// The market of [`risk`] with the fund's haircut, unwind share and fees set.
fn risk_fund(haircut: Rate, unwind: Rate, maker_fee: Rate, taker_fee: Rate) -> RiskConfig {
    let base = risk(AdlMode::Queue);
    let liq = base.liquidation.expect("liquidating");
    RiskConfig {
        maker_fee,
        taker_fee,
        liquidation: Some(LiquidationConfig {
            fund_haircut: haircut,
            unwind_rate: unwind,
            isolated_fund: false,
            ..liq
        }),
        ..base
    }
}

/// The gap scenario (isolated long 20 @ 1,000, bucket 1,100, bids only at 900, mark
/// 930: equity −300, bankruptcy price 945) with a fund of `fund` atoms.
fn gap(haircut: Rate, unwind: Rate, fund: i64) -> H {
    let mut h = H::with(vec![risk_fund(haircut, unwind, Rate::ZERO, Rate::ZERO)]);
    h.deposit(1, 5_000);
    h.isolate(1, 0, 1_100);
    h.deposit(2, 1_000_000);
    h.deposit(3, 1_000_000);
    h.deposit(4, 10_000);
    h.trade(0, 1, 2, Side::Buy, 20);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(900)), 100);
    if fund > 0 {
        h.ok(CommandKind::InsuranceDeposit {
            market: None,
            amount: fund,
        });
    }
    h.mark(0, 930);
    h
}

#[test]
fn the_backstop_takes_only_what_the_funds_equity_carries_above_its_haircut() {
    // Haircut 100%: taking c lots at 945 booked at 930 leaves equity 10,000 − 15c and a
    // haircut ceil(c × 930), so 10,000 − 945c ≥ 0: c = 10 (c = 11: 10,000 − 10,395 < 0).
    let h = gap(Rate::ONE, Rate::ZERO, 10_000);
    let ev = h.kinds();
    assert!(ev.contains(&EventKind::Backstop {
        account: AccountId(1),
        market: MarketId(0),
        qty: Qty(10),
        price: Price(945),
    }));
    // Cash 10,000 − 10 × 15; equity: the 10 lots are worth their cost at the mark.
    assert!(ev.contains(&EventKind::InsuranceFund {
        fund: None,
        balance: 9_850,
        change: -150,
        equity: 9_850,
    }));
    // The other 10 lots are deleveraged against the only short, at the bankruptcy price.
    assert_eq!(adl_fills(&ev), vec![(2, 10, 945)]);
    assert_eq!((h.size(1, 0), h.size(2, 0)), (0, -10));
    assert_eq!(h.engine.fund_position(MarketId(0)), Some((10, 9_300)));
    let fund = h.engine.fund();
    assert_eq!((fund.equity, fund.haircut), (9_850, 9_300));
}

#[test]
fn the_fund_unwinds_a_share_of_the_depth_within_its_band() {
    // The fund holds 10 lots long (as above) and unwinds 25% of the depth per command.
    let mut h = gap(Rate::ONE, bps(2_500), 10_000);
    // Band ceil(930 × 0.01 − ε) = 10: the fund sells down to 920. The only bids (900)
    // are below it: no order.
    assert!(!h
        .kinds()
        .iter()
        .any(|e| matches!(e, EventKind::FundOrder { .. })));
    // Account 4 bids 8 @ 925: within the band, so the same command sends
    // min(10, max(floor(8 × 0.25), 1)) = 2 lots at 920, filled at 925.
    h.order(4, 0, Side::Buy, OrderType::Limit(Price(925)), 8);
    let ev = h.kinds();
    assert!(ev.iter().any(|e| matches!(
        e,
        EventKind::FundOrder {
            market: MarketId(0),
            side: Side::Sell,
            price: Price(920),
            qty: Qty(2),
            ..
        }
    )));
    assert!(ev.iter().any(|e| matches!(
        e,
        EventKind::Fill {
            maker_account: AccountId(4),
            taker_account: AccountId::FUND,
            price: Price(925),
            qty: Qty(2),
            liquidation: true,
            ..
        }
    )));
    // The fund sells 2 of its 10 lots (cost 9,300): realised 1,850 − 1,860 = −10.
    assert!(ev.contains(&EventKind::InsuranceFund {
        fund: None,
        balance: 9_840,
        change: -10,
        equity: 9_840,
    }));
    assert_eq!(h.engine.fund_position(MarketId(0)), Some((8, 7_440)));
    assert_eq!(h.size(4, 0), 2);
}

#[test]
fn a_fund_with_negative_equity_is_deleveraged_at_its_bankruptcy_price() {
    // No haircut: a fund of 1,000 takes all 20 lots (1,000 − 15 × 20 = 700 ≥ 0).
    let mut h = gap(Rate::ZERO, Rate::ZERO, 1_000);
    assert_eq!(h.engine.fund_position(MarketId(0)), Some((20, 18_600)));
    assert_eq!(h.engine.fund().equity, 700);
    // At 890 its equity is 700 + 20 × (890 − 930) = −100: its bankruptcy price is
    // 890 − floor(−100 / 20) = 895, and ADL sells its 20 lots there to the short.
    h.mark(0, 890);
    let ev = h.kinds();
    assert!(ev.contains(&EventKind::AdlFill {
        market: MarketId(0),
        account: AccountId::FUND,
        counterparty: AccountId(2),
        qty: Qty(20),
        price: Price(895),
    }));
    // Realised 20 × 895 − 18,600 = −700: cash and equity end at exactly 0.
    assert!(ev.contains(&EventKind::InsuranceFund {
        fund: None,
        balance: 0,
        change: -700,
        equity: 0,
    }));
    assert_eq!(h.engine.fund_position(MarketId(0)), Some((0, 0)));
    assert_eq!(h.size(2, 0), 0);
}

#[test]
fn a_loss_nothing_can_carry_is_written_off_and_socialised_on_the_fee_ledger() {
    // Maker rebate 0.1%, taker fee 0.2%; no insurance fund.
    let mut h = H::with(vec![risk_fund(Rate::ZERO, Rate::ZERO, -bps(10), bps(20))]);
    h.deposit(1, 5_000);
    h.isolate(1, 0, 1_100);
    h.deposit(2, 1_000_000);
    h.deposit(3, 1_000_000);
    // Account 1 buys 20 @ 1,000 as taker: fee ceil(20,000 × 0.002 − ε) = 40 (bucket
    // 1,060); the maker's rebate floor(20,000 × 0.001 − ε) = 19: the fee ledger holds 21.
    h.trade(0, 1, 2, Side::Buy, 20);
    assert_eq!(h.engine.fee_ledger(), 21);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(947)), 100);
    h.mark(0, 930);
    let ev = h.kinds();
    // Equity 1,060 − 1,400 = −340: bankruptcy price 930 + 17 = 947; the whole position
    // fills there (realised 18,940 − 20,000 = −1,060: bucket 0), but the liquidated side
    // funds the maker's rebate floor(18,940 × 0.001 − ε) = 18: equity −18, flat. The fund
    // has nothing: the 18 atoms are bad debt, socialised on the fee ledger (21 → 3).
    assert_eq!(fills(&ev), vec![(947, 20, true)]);
    assert!(ev.contains(&EventKind::BadDebt {
        account: AccountId(1),
        market: Some(MarketId(0)),
        amount: 18,
        socialised: 18,
    }));
    assert!(ev.contains(&EventKind::LiquidationFinished {
        account: AccountId(1),
        market: Some(MarketId(0)),
        fee: 0,
        equity: 0,
    }));
    assert_eq!((h.engine.fee_ledger(), h.engine.bad_debt()), (3, 0));
    assert_eq!(
        h.engine.pool_risk(AccountId(1), Some(MarketId(0))),
        Some((0, 0))
    );
}

#[test]
fn nothing_is_liquidated_in_a_halted_market_until_it_resumes() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    h.ok(CommandKind::HaltMarket(MarketId(0)));
    // The mark is accepted while halted; the pool falls below MM (equity 200 < 478) and
    // stays there.
    h.mark(0, 955);
    assert!(!h
        .kinds()
        .iter()
        .any(|e| matches!(e, EventKind::MarginCall { .. })));
    assert_eq!(
        h.engine.pool_risk(AccountId(1), Some(MarketId(0))),
        Some((200, 478))
    );
    // Resuming finds it again: the waterfall of `isolated_long_is_liquidated_partially`.
    h.ok(CommandKind::ResumeMarket(MarketId(0)));
    let ev = h.kinds();
    assert!(matches!(ev[0], EventKind::MarketResumed(MarketId(0))));
    assert_eq!(fills(&ev), vec![(960, 10, true)]);
    assert_eq!(
        h.engine.pool_risk(AccountId(1), Some(MarketId(0))),
        Some((239, 239))
    );
}

/// A conditional order of account `a` in market 0.
fn conditional(
    a: u32,
    side: Side,
    kind: ConditionalKind,
    trigger: i64,
    limit: Option<i64>,
    qty: i64,
) -> CommandKind {
    CommandKind::NewConditional(ConditionalOrder {
        account: AccountId(a),
        market: MarketId(0),
        client_id: ClientOrderId(900 + trigger as u64),
        side,
        qty: Qty(qty),
        trigger: Price(trigger),
        kind,
        limit: limit.map(Price),
        reduce_only: side == Side::Sell && a == 1,
        stp: StpMode::CancelResting,
    })
}

/// The id a `ConditionalAccepted` of the last command gave.
fn accepted_conditional(h: &H) -> OrderId {
    h.kinds()
        .iter()
        .find_map(|e| match *e {
            EventKind::ConditionalAccepted { order_id, .. } => Some(order_id),
            _ => None,
        })
        .expect("accepted")
}

#[test]
fn a_stop_loss_fires_before_the_liquidation_engine_looks_at_the_pool() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    // Reduce-only stop-market sell of the whole long, firing when the mark falls to 960.
    h.ok(conditional(
        1,
        Side::Sell,
        ConditionalKind::Stop,
        960,
        None,
        20,
    ));
    let stop = accepted_conditional(&h);
    // At 955 the pool would be liquidated (equity 200 < MM 478), but the stop fires
    // first: a market sell of 20 (protection limit 960 − floor(960 × 0.1) = 864) takes
    // 10 @ 960 and 10 @ 950: realised 19,100 − 20,000 = −900, bucket 200, flat.
    h.mark(0, 955);
    let ev = h.kinds();
    assert!(matches!(ev[0], EventKind::MarkUpdated { .. }));
    assert_eq!(
        ev[1],
        EventKind::ConditionalTriggered {
            order_id: stop,
            account: AccountId(1),
            market: MarketId(0),
        }
    );
    assert!(matches!(
        ev[2],
        EventKind::Accepted {
            price: Price(864),
            qty: Qty(20),
            ..
        }
    ));
    assert_eq!(fills(&ev), vec![(960, 10, false), (950, 10, false)]);
    assert!(!ev.iter().any(|e| matches!(e, EventKind::MarginCall { .. })));
    assert_eq!(h.size(1, 0), 0);
    assert_eq!(
        h.engine.pool_risk(AccountId(1), Some(MarketId(0))),
        Some((200, 0))
    );
    assert_eq!(h.engine.conditional_orders(), 0);
}

#[test]
fn a_take_profit_limit_fires_when_the_mark_rises_to_it() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(1_045)), 5);
    // Reduce-only take-profit sell limited at 1,040: a GTC limit when it fires.
    h.ok(conditional(
        1,
        Side::Sell,
        ConditionalKind::TakeProfit,
        1_050,
        Some(1_040),
        20,
    ));
    h.mark(0, 1_049);
    assert_eq!(h.engine.conditional_orders(), 1, "not yet");
    h.mark(0, 1_050);
    let ev = h.kinds();
    // Fills the 5 @ 1,045 bid; the other 15 lots rest at 1,040 as a reduce-only order
    // (15 ≤ the 15 still long).
    assert_eq!(fills(&ev), vec![(1_045, 5, false)]);
    assert_eq!(h.size(1, 0), 15);
    let resting: Vec<_> = h
        .engine
        .level_orders(MarketId(0), Side::Sell, Price(1_040))
        .map(|o| (o.account.0, o.qty.0))
        .collect();
    assert_eq!(resting, vec![(1, 15)]);
    // The short buys 10 of it back: 5 lots left, the 5 still long.
    h.order(2, 0, Side::Buy, OrderType::Ioc(Price(1_040)), 10);
    assert_eq!(h.size(1, 0), 5);
    let resting: Vec<_> = h
        .engine
        .level_orders(MarketId(0), Side::Sell, Price(1_040))
        .map(|o| (o.account.0, o.qty.0))
        .collect();
    assert_eq!(resting, vec![(1, 5)]);
}

#[test]
fn margin_is_checked_when_a_conditional_fires_not_when_it_is_placed() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    h.deposit(4, 100);
    h.order(2, 0, Side::Sell, OrderType::Limit(Price(1_020)), 10);
    // A stop-market buy of 10 is accepted with 100 atoms: no margin is checked yet.
    h.ok(conditional(
        4,
        Side::Buy,
        ConditionalKind::Stop,
        1_010,
        None,
        10,
    ));
    let id = accepted_conditional(&h);
    // It would fire now at 1,000? No: a buy stop fires when the mark rises to it.
    h.mark(0, 1_010);
    let ev = h.kinds();
    // At 1,010 it becomes a market buy limited at 1,020 + floor(1,020 × 0.1) = 1,122:
    // IM ceil(10 × 1,010 / 20) = 505, open loss (1,122 − 1,010) × 10 = 1,120, fee reserve
    // 2 × 10 = 20: 1,645 needed, 100 held, so it is rejected with shortfall 1,545.
    assert!(ev.contains(&EventKind::ConditionalRejected {
        order_id: id,
        reason: RejectReason::InsufficientMargin { shortfall: 1_545 },
    }));
    assert!(fills(&ev).is_empty());
}

#[test]
fn conditionals_are_refused_if_they_would_fire_now_and_can_be_cancelled() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    // A sell stop fires when the mark falls to its trigger: at the mark 1,000 it would.
    h.run(conditional(
        1,
        Side::Sell,
        ConditionalKind::Stop,
        1_000,
        None,
        20,
    ));
    assert_eq!(
        cascade_core::rejection(&h.events),
        Some(RejectReason::WouldTriggerNow)
    );
    h.ok(conditional(
        1,
        Side::Sell,
        ConditionalKind::Stop,
        960,
        None,
        20,
    ));
    let id = accepted_conditional(&h);
    // The stop heatmap: bucket width ceil(100,000 / 4,096) = 25 prices, so 960 is in
    // bucket (960 − 1) / 25 = 38, covering 951..=975.
    let mut seen = Vec::new();
    h.engine.stop_heatmap(MarketId(0), |lo, hi, buys, sells| {
        if buys + sells > 0 {
            seen.push((lo.0, hi.0, buys, sells));
        }
    });
    assert_eq!(seen, vec![(951, 975, 0, 20)]);
    h.ok(CommandKind::CancelConditional {
        account: AccountId(1),
        order_id: id,
    });
    assert_eq!(
        h.kinds(),
        vec![EventKind::ConditionalCancelled {
            order_id: id,
            account: AccountId(1),
            reason: CancelReason::User,
        }]
    );
    h.run(CommandKind::CancelConditional {
        account: AccountId(1),
        order_id: id,
    });
    assert_eq!(
        cascade_core::rejection(&h.events),
        Some(RejectReason::UnknownOrder)
    );
}

#[test]
fn a_liquidation_cancels_the_pools_conditionals_and_a_halt_holds_them() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    h.ok(conditional(
        1,
        Side::Sell,
        ConditionalKind::TakeProfit,
        1_100,
        None,
        20,
    ));
    let take_profit = accepted_conditional(&h);
    h.ok(conditional(
        3,
        Side::Buy,
        ConditionalKind::Stop,
        1_020,
        None,
        1,
    ));
    let breakout = accepted_conditional(&h);
    // The long is liquidated at 955 (as in `isolated_long_is_liquidated_partially`): its
    // take-profit goes with its resting orders.
    h.mark(0, 955);
    assert!(h.kinds().contains(&EventKind::ConditionalCancelled {
        order_id: take_profit,
        account: AccountId(1),
        reason: CancelReason::Liquidation,
    }));
    // Halted, a mark past account 3's buy stop fires nothing; resuming fires it.
    h.ok(CommandKind::HaltMarket(MarketId(0)));
    h.mark(0, 1_020);
    assert!(!h
        .kinds()
        .iter()
        .any(|e| matches!(e, EventKind::ConditionalTriggered { .. })));
    h.ok(CommandKind::ResumeMarket(MarketId(0)));
    assert!(h.kinds().contains(&EventKind::ConditionalTriggered {
        order_id: breakout,
        account: AccountId(3),
        market: MarketId(0),
    }));
}

#[test]
fn a_market_with_its_own_fund_backstops_from_it_alone() {
    let isolated = |on: bool| RiskConfig {
        liquidation: Some(LiquidationConfig {
            isolated_fund: on,
            ..risk_fund(Rate::ONE, Rate::ZERO, Rate::ZERO, Rate::ZERO)
                .liquidation
                .expect("liquidating")
        }),
        ..risk(AdlMode::Queue)
    };
    // Market 0 has a fund of its own; market 1 shares the common one.
    let mut h = H::with(vec![isolated(true), isolated(false)]);
    h.run(CommandKind::InsuranceDeposit {
        market: Some(MarketId(1)),
        amount: 1_000,
    });
    assert_eq!(
        cascade_core::rejection(&h.events),
        Some(RejectReason::NoIsolatedFund)
    );
    h.ok(CommandKind::InsuranceDeposit {
        market: Some(MarketId(0)),
        amount: 10_000,
    });
    assert_eq!(
        h.kinds(),
        vec![EventKind::InsuranceFund {
            fund: Some(MarketId(0)),
            balance: 10_000,
            change: 10_000,
            equity: 10_000,
        }]
    );
    // The gap scenario in market 0 (equity −300, bankruptcy price 945, bids only at 900):
    // its own fund carries 10 lots under a 100% haircut (10,000 − 945c ≥ 0), ADL the rest;
    // the shared fund, empty, is not involved.
    h.deposit(1, 5_000);
    h.isolate(1, 0, 1_100);
    h.deposit(2, 1_000_000);
    h.deposit(3, 1_000_000);
    h.trade(0, 1, 2, Side::Buy, 20);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(900)), 100);
    h.mark(0, 930);
    let ev = h.kinds();
    assert!(ev.contains(&EventKind::InsuranceFund {
        fund: Some(MarketId(0)),
        balance: 9_850,
        change: -150,
        equity: 9_850,
    }));
    assert_eq!(adl_fills(&ev), vec![(2, 10, 945)]);
    assert_eq!(h.engine.fund().cash, 0);
    let own = h.engine.market_fund(MarketId(0)).expect("own fund");
    assert_eq!(
        (own.cash, own.equity, own.position_lots),
        (9_850, 9_850, 10)
    );
    assert_eq!(h.engine.market_fund(MarketId(1)), None);
}

/// Funding alone pushes an isolated long below MM: the `FundingRate` command itself
/// finds it (the index's query point for longs drifts down with the funding paid; no
/// rebase at this size), and the first liquidation fill settles what it owes.
#[test]
fn funding_alone_triggers_a_liquidation() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    h.ok(CommandKind::FundingRate {
        market: MarketId(0),
        rate: bps(301),
    });
    let ev = h.kinds();
    // 301 bp = 129,278,515 × 2^-32; × mark 1,000 = 30.0999998 atoms per lot; 20 lots owe
    // 601.999996 → 602 (rounded up): equity 1,100 − 602 = 498 < MM 500.
    assert!(ev.contains(&EventKind::MarginCall {
        account: AccountId(1),
        market: Some(MarketId(0)),
        equity: 498,
        maintenance: 500,
    }));
    let settled: Vec<i64> = ev
        .iter()
        .filter_map(|e| match *e {
            EventKind::PositionChanged {
                account: AccountId(1),
                funding,
                ..
            } => Some(funding),
            _ => None,
        })
        .collect();
    assert_eq!(settled.first(), Some(&-602), "{ev:?}");
    assert!(settled[1..].iter().all(|&f| f == 0));
}

/// One basis point of funding moves no pool near MM: nothing is liquidated and the
/// payment emits only its index event (an owed amount not scaled down by 2^32 would
/// liquidate the 20× long).
#[test]
fn a_small_funding_payment_liquidates_nobody() {
    let mut h = isolated_long(AdlMode::Queue, 950);
    h.ok(CommandKind::FundingRate {
        market: MarketId(0),
        rate: bps(1),
    });
    assert!(
        h.kinds()
            .iter()
            .all(|e| matches!(e, EventKind::FundingIndexed { .. })),
        "{:?}",
        h.kinds()
    );
}

/// A long whose trigger lies at or below 0 (fully funded: `cost − money + 17 ≤ 0`) is
/// still indexed when the band is wide (keys reach below 0 there), so funding that
/// drains it is found by the `FundingRate` command itself (review finding: such a term
/// used to be skipped, leaving the position in no list).
#[test]
fn a_fully_funded_long_drained_by_funding_is_found() {
    let mut h = H::new(1, AdlMode::Queue);
    h.deposit(1, 100_000);
    h.deposit(2, 1_000_000);
    h.deposit(3, 1_000_000);
    // Isolated long of 10 lots at 1,000 with a 10,100 bucket: cost − money + 17 < 0.
    h.isolate(1, 0, 10_100);
    h.trade(0, 1, 2, Side::Buy, 10);
    h.order(3, 0, Side::Buy, OrderType::Limit(Price(990)), 100);
    // 100% funding: exactly 1,000 per lot (rate bits 2^32), 10 lots owe 10,000 →
    // equity 10,100 − 10,000 = 100 < MM ceil(10,000 × 0.025 − ε) = 250.
    h.ok(CommandKind::FundingRate {
        market: MarketId(0),
        rate: Rate::ONE,
    });
    assert!(
        h.kinds().iter().any(|e| matches!(
            e,
            EventKind::MarginCall {
                account: AccountId(1),
                equity: 100,
                maintenance: 250,
                ..
            }
        )),
        "{:?}",
        h.kinds()
    );
}
