//! The reference liquidation model on its own (no engine): hand-computed scenarios whose
//! every number is worked out in the comments from docs/SEMANTICS.md, and a property
//! test that the model keeps its own promises (money conserved, nothing left below MM,
//! no negative equity, a solvent fund) over the generated liquidation streams.
//!
//! Set-up of the scenarios: one market, tick 1, prices 1..=100,000, one maintenance tier
//! of exactly 1/32 (so MM = ceil(notional / 32)), 20× leverage (IM = notional / 20),
//! volatility scale fixed at 1, buffer 0, band 100 bps, liquidation fee 0, queue ADL,
//! fund haircut exactly 1/8, unwind rate exactly 1/2. Mark 1,000 to start.

use cascade_core::risk::tier_table;
use cascade_core::{
    AccountId, AdlMode, ClientOrderId, Command, CommandKind, EngineConfig, Event, EventKind,
    LiquidationConfig, MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty, Rate,
    RiskConfig, Side, StpMode,
};
use cascade_tests::reference::RefEngine;
use proptest::prelude::*;

const M: MarketId = MarketId(0);

/// `2^-k` exactly.
fn pow2(k: u32) -> Rate {
    Rate::from_bits(1 << (32 - k))
}

fn risk(fee: Rate, min_notional: i64) -> RiskConfig {
    let (tiers, tier_count) = tier_table(&[(1 << 40, pow2(5))]);
    RiskConfig {
        max_leverage: 20,
        tiers,
        tier_count,
        maker_fee: -fee,
        taker_fee: fee,
        vol_lambda: Rate::ZERO,
        vol_k: Rate::ZERO,
        vol_floor: Rate::ONE,
        vol_cap: Rate::ONE,
        oi_cap: 1_000_000,
        account_oi_share_bps: 10_000,
        max_mark_move_bps: 5_000,
        liquidation: Some(LiquidationConfig {
            buffer: Rate::ZERO,
            min_notional,
            band_bps: 100,
            fee_rate: Rate::ZERO,
            adl: AdlMode::Queue,
            order_margin: true,
            fund_haircut: pow2(3),
            unwind_rate: pow2(1),
            isolated_fund: false,
        }),
    }
}

struct H {
    r: RefEngine,
    seq: u64,
    net: i128,
}

impl H {
    fn new(risk: RiskConfig) -> H {
        let mut h = H {
            r: RefEngine::new(EngineConfig::default()),
            seq: 0,
            net: 0,
        };
        h.run(CommandKind::AddMarket(Box::new(MarketConfig {
            tick: 1,
            lot_base_atoms: 1,
            min_price: Price(1),
            max_price: Price(100_000),
            max_qty: Qty(1_000),
            market_band_bps: 1_000,
            risk: Some(risk),
        })));
        for a in 0..4 {
            h.run(CommandKind::OpenAccount(AccountId(a)));
        }
        h.mark(1_000);
        h
    }

    /// Applies a command, checks it was accepted, money is conserved and the model's
    /// promises hold; returns its events after the first (the command's own event).
    fn run(&mut self, kind: CommandKind) -> Vec<EventKind> {
        self.seq += 1;
        let cmd = Command {
            seq: self.seq,
            ts_ns: 0,
            kind,
        };
        let events: Vec<Event> = self.r.apply(&cmd);
        assert_eq!(cascade_core::rejection(&events), None, "{cmd:?}");
        self.net += cascade_tests::harness::net_inflow(&cmd, &events);
        assert_eq!(self.r.money_accounted(), self.net, "money after {cmd:?}");
        assert_eq!(self.r.cascade_violation(), None, "after {cmd:?}");
        events.iter().skip(1).map(|e| e.kind).collect()
    }

    fn mark(&mut self, price: i64) -> Vec<EventKind> {
        self.run(CommandKind::MarkPrice {
            market: M,
            price: Price(price),
        })
    }

    fn deposit(&mut self, a: u32, amount: i64) {
        self.run(CommandKind::Deposit {
            account: AccountId(a),
            amount,
        });
    }

    fn order(&mut self, a: u32, side: Side, order_type: OrderType, qty: i64) -> Vec<EventKind> {
        self.run(CommandKind::NewOrder(NewOrder {
            account: AccountId(a),
            client_id: ClientOrderId(self.seq),
            market: M,
            side,
            order_type,
            qty: Qty(qty),
            stp: StpMode::CancelResting,
            reduce_only: false,
        }))
    }

    /// Account 1 (100,000 atoms) rests a sell of 10 at 1,000 (order 1); account 0
    /// (`deposit` atoms) buys it with an IOC (order 2): 0 long 10, 1 short 10, cost ±10,000.
    fn open_long(&mut self, deposit: i64) {
        self.deposit(0, deposit);
        self.deposit(1, 100_000);
        self.order(1, Side::Sell, OrderType::Limit(Price(1_000)), 10);
        self.order(0, Side::Buy, OrderType::Ioc(Price(1_000)), 10);
    }
}

fn pc(a: u32, size: i64, cost: i128, realised: i64) -> EventKind {
    EventKind::PositionChanged {
        account: AccountId(a),
        market: M,
        size,
        cost,
        realised,
        funding: 0,
    }
}

fn fund(balance: i128, change: i128, equity: i128) -> EventKind {
    EventKind::InsuranceFund {
        fund: None,
        balance,
        change,
        equity,
    }
}

fn liq_order(id: u64, side: Side, price: i64, qty: i64) -> EventKind {
    EventKind::LiquidationOrder {
        order_id: OrderId(id),
        account: AccountId(0),
        market: M,
        side,
        price: Price(price),
        qty: Qty(qty),
    }
}

/// Scenario A: account 0 (600 atoms) long 10 at 1,000; fund cash 500. Mark 950:
/// equity 600 + 9,500 − 10,000 = 100, MM = ceil(9,500 / 32) = ceil(296.875) = 297.
///
/// - depth = (297 − 100) / 297 ≈ 0.6633; band = ceil(950 × 100 / 10,000) = 10, widened
///   ceil(10 × 1.6633) = 17: band limit 933. bk = 950 − floor(100 / 10) = 940, so the
///   partial's limit is max(933, 940) = 940. The book is empty, so every lot counts at
///   the limit: S(q) = 10q, and 10 × (100 − 10q) + 297q ≥ 10 × 297 needs q ≥ 10: the
///   partial is the whole position, 10 at 940 (order 3), and trades nothing.
/// - whole position: 10 at 940 repeats the unfilled partial: skipped, not sent.
/// - backstop at 940, fund buys c booked at mark 950: E_f(c) = 500 + 10c,
///   H(c) = ceil(950c / 8) = ceil(118.75c). c = 5: 550 < 594; c = 4: 540 ≥ 475. So 4.
///   Account: released 4,000, realised 4 × 940 − 4,000 = −240, money 360. Fund cash
///   500 + 4 × (950 − 940) = 540, position (4, 3,800), equity 540.
/// - ADL 6 at 940 against account 1: account 0 realised 5,640 − 6,000 = −360, money 0;
///   account 1 buys 6: released −6,000, realised −5,640 + 6,000 = 360, (−4, −4,000).
/// - fee: no whole-position order was sent; min(fee, max(E − T, 0)) = 0 anyway.
#[test]
fn backstop_limited_by_the_haircut_then_adl() {
    let mut h = H::new(risk(Rate::ZERO, 0));
    h.open_long(600);
    h.run(CommandKind::InsuranceDeposit {
        market: None,
        amount: 500,
    });
    let events = h.mark(950);
    assert_eq!(
        events,
        vec![
            EventKind::MarginCall {
                account: AccountId(0),
                market: None,
                equity: 100,
                maintenance: 297,
            },
            EventKind::LiquidationStarted {
                account: AccountId(0),
                market: None,
                equity: 100,
                maintenance: 297,
            },
            liq_order(3, Side::Sell, 940, 10),
            pc(0, 6, 6_000, -240),
            EventKind::Backstop {
                account: AccountId(0),
                market: M,
                qty: Qty(4),
                price: Price(940),
            },
            fund(540, 40, 540),
            pc(0, 0, 0, -360),
            pc(1, -4, -4_000, 360),
            EventKind::AdlFill {
                market: M,
                account: AccountId(0),
                counterparty: AccountId(1),
                qty: Qty(6),
                price: Price(940),
            },
            EventKind::LiquidationFinished {
                account: AccountId(0),
                market: None,
                fee: 0,
                equity: 0,
            },
        ]
    );
    assert_eq!(h.r.fund[0], (4, 3_800));
    assert_eq!(
        (h.r.insurance, h.r.fund_equity(), h.r.fund_haircut()),
        (540, 540, 475)
    );
    assert_eq!(h.r.collateral[..2], [0, 100_360]);

    // Scenario C, continued: mark 800. Fund equity 540 + 4 × 800 − 3,800 = −60 < 0, so
    // it is deleveraged whole: bk = 800 − floor(−60 / 4) = 815, ADL of 4 lots against
    // account 1 (fresh ranking). Fund sells 4 at 815: realised 3,260 − 3,800 = −540,
    // cash 0, equity 0 (∈ [0, 4)). Account 1 buys 4 at 815: realised −3,260 + 4,000 =
    // 740, flat, money 101,100.
    let events = h.mark(800);
    assert_eq!(
        events,
        vec![
            pc(1, 0, 0, 740),
            EventKind::AdlFill {
                market: M,
                account: AccountId::FUND,
                counterparty: AccountId(1),
                qty: Qty(4),
                price: Price(815),
            },
            fund(0, -540, 0),
        ]
    );
    assert_eq!((h.r.fund[0], h.r.insurance), ((0, 0), 0));
    assert_eq!(h.r.collateral[1], 101_100);
}

/// Scenario B: after scenario A (fund long 4, cost 3,800, cash 540, mark 950), account
/// 2 rests a bid of 6 at 945 (order 4). The fund's unwind: band ceil(950 × 100 /
/// 10,000) = 10, sell limit 940; visible bids at ≥ 940: V = 6; q = min(4, max(floor(6 ×
/// 1/2), 1)) = 3. FundOrder 5 sells 3 at 940, fills 3 at 945 (no fees here). Fund:
/// released ceil(3,800 × 3 / 4) = 2,850, realised 2,835 − 2,850 = −15, cash 525,
/// position (1, 950), equity 525 + 950 − 950 = 525.
#[test]
fn fund_unwind_sized_from_visible_depth() {
    let mut h = H::new(risk(Rate::ZERO, 0));
    h.open_long(600);
    h.run(CommandKind::InsuranceDeposit {
        market: None,
        amount: 500,
    });
    h.mark(950);
    h.deposit(2, 1_000);
    let events = h.order(2, Side::Buy, OrderType::Limit(Price(945)), 6);
    assert_eq!(
        events,
        vec![
            EventKind::Level {
                market: M,
                side: Side::Buy,
                price: Price(945),
                qty: Qty(6),
                orders: 1,
            },
            EventKind::FundOrder {
                order_id: OrderId(5),
                market: M,
                side: Side::Sell,
                price: Price(940),
                qty: Qty(3),
            },
            EventKind::Fill {
                market: M,
                maker_order: OrderId(4),
                maker_account: AccountId(2),
                taker_order: OrderId(5),
                taker_account: AccountId::FUND,
                taker_side: Side::Sell,
                price: Price(945),
                qty: Qty(3),
                maker_fee: 0,
                taker_fee: 0,
                liquidation: true,
            },
            pc(2, 3, 2_835, 0),
            EventKind::Level {
                market: M,
                side: Side::Buy,
                price: Price(945),
                qty: Qty(3),
                orders: 1,
            },
            fund(525, -15, 525),
        ]
    );
    assert_eq!(h.r.fund[0], (1, 950));
}

/// Scenario D: maker fee −2^-10 (rebate), taker 2^-10; a minimum notional so large that
/// every order is for the whole position; fund cash 5. Account 0 (600) buys 10 at 1,000
/// from account 1: taker fee ceil(10,000 / 1,024) = 10, rebate floor(9.77) = 9; money
/// 590, fee ledger 1. Account 2 bids 10 at 941. Mark 950: equity 590 + 9,500 − 10,000
/// = 90 < MM 297; bk = 950 − 9 = 941, limit max(933, 941) = 941, q = 10 (the rest would
/// be worth less than the minimum notional). It fills at 941: rebate floor(9,410 /
/// 1,024) = 9, so the liquidated side's taker fee is max(0, 9) = 9 (fee ledger
/// unchanged at 1); realised 9,410 − 10,000 = −590, money 590 − 590 − 9 = −9, flat.
/// Fee: min(0, max(−9, 0)) = 0. Deficit 9: the fund pays its capacity max(5 − 0, 0) = 5
/// (cash 0), z = 4 is written off, socialised min(4, 1) = 1 (fee ledger 0), 3 stays
/// outstanding.
#[test]
fn deficit_written_off_as_bad_debt_with_socialisation() {
    let mut h = H::new(risk(pow2(10), 1 << 40));
    h.open_long(600);
    assert_eq!((h.r.collateral[0], h.r.fee_ledger), (590, 1));
    h.run(CommandKind::InsuranceDeposit {
        market: None,
        amount: 5,
    });
    h.deposit(2, 10_000);
    h.order(2, Side::Buy, OrderType::Limit(Price(941)), 10);
    let events = h.mark(950);
    assert_eq!(
        events,
        vec![
            EventKind::MarginCall {
                account: AccountId(0),
                market: None,
                equity: 90,
                maintenance: 297,
            },
            EventKind::LiquidationStarted {
                account: AccountId(0),
                market: None,
                equity: 90,
                maintenance: 297,
            },
            liq_order(4, Side::Sell, 941, 10),
            EventKind::Fill {
                market: M,
                maker_order: OrderId(3),
                maker_account: AccountId(2),
                taker_order: OrderId(4),
                taker_account: AccountId(0),
                taker_side: Side::Sell,
                price: Price(941),
                qty: Qty(10),
                maker_fee: -9,
                taker_fee: 9,
                liquidation: true,
            },
            pc(2, 10, 9_410, 0),
            pc(0, 0, 0, -590),
            EventKind::Level {
                market: M,
                side: Side::Buy,
                price: Price(941),
                qty: Qty(0),
                orders: 0,
            },
            fund(0, -5, 0),
            EventKind::BadDebt {
                account: AccountId(0),
                market: None,
                amount: 4,
                socialised: 1,
            },
            EventKind::LiquidationFinished {
                account: AccountId(0),
                market: None,
                fee: 0,
                equity: 0,
            },
        ]
    );
    assert_eq!((h.r.fee_ledger, h.r.bad_debt, h.r.collateral[0]), (0, 3, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("CASCADE_LIQ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    ))]

    /// The model alone over the generated streams: money conserved to the atom (bad
    /// debt included) and every promise of the cascade kept after every command.
    #[test]
    fn the_model_keeps_its_promises(
        cmds in cascade_tests::gen::arb_liquidation_stream(120, false)
    ) {
        let mut r = RefEngine::new(cascade_tests::gen::CONFIG);
        let mut net = 0i128;
        for cmd in &cmds {
            let events = r.apply(cmd);
            net += cascade_tests::harness::net_inflow(cmd, &events);
            prop_assert_eq!(r.money_accounted(), net, "money after {:?}", cmd);
            if let Some(v) = r.cascade_violation() {
                return Err(TestCaseError::fail(format!("after {cmd:?}: {v}")));
            }
        }
    }
}

/// The generated streams drive the model through every stage (else the property above
/// is vacuous): prints the counts, and requires liquidations, backstops, ADL and fund
/// orders.
#[test]
fn the_model_reaches_every_stage() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut n = [0usize; 7];
    for _ in 0..300 {
        let cmds = cascade_tests::gen::arb_liquidation_stream(120, false)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        let mut r = RefEngine::new(cascade_tests::gen::CONFIG);
        for cmd in &cmds {
            for e in r.apply(cmd) {
                let i = match e.kind {
                    EventKind::LiquidationStarted { .. } => 0,
                    EventKind::Backstop { .. } => 1,
                    EventKind::AdlFill { account, .. } if account == AccountId::FUND => 3,
                    EventKind::AdlFill { .. } => 2,
                    EventKind::FundOrder { .. } => 4,
                    EventKind::BadDebt { .. } => 5,
                    EventKind::FundingPaid { account, .. } if account == AccountId::FUND => 6,
                    _ => continue,
                };
                n[i] += 1;
            }
        }
    }
    println!(
        "liquidations {}, backstops {}, ADL fills {}, fund ADL fills {}, fund orders {}, bad debts {}, fund funding {}",
        n[0], n[1], n[2], n[3], n[4], n[5], n[6]
    );
    assert!(n[0] > 50 && n[1] > 0 && n[2] > 0 && n[4] > 0, "{n:?}");
}
