//! Hand-checked margin scenarios: every rounding site, the edge inputs, cross and
//! isolated confinement, caps and leverage queries. Expected numbers are worked out in
//! the comments from the formulas in docs/SEMANTICS.md.

use cascade_core::risk::bps;
use cascade_core::risk::tier_table;
use cascade_core::{
    AccountId, ClientOrderId, CommandKind, Engine, EngineConfig, Event, EventKind, MarketConfig,
    MarketId, NewOrder, OrderType, Price, Qty, Rate, RejectReason, RiskConfig, Side, StpMode,
};

const M: MarketId = MarketId(0);

/// Tiers 100,000 / 1,000,000 / 10,000,000 atoms at 1% / 2.5% / 5%; 10× max leverage; no
/// volatility scaling; OI cap 10,000 lots.
fn risk(maker_bp: i64, taker_bp: i64) -> RiskConfig {
    let (tiers, tier_count) = tier_table(&[
        (100_000, bps(100)),
        (1_000_000, bps(250)),
        (10_000_000, bps(500)),
    ]);
    RiskConfig {
        max_leverage: 10,
        tiers,
        tier_count,
        maker_fee: bps(maker_bp),
        taker_fee: bps(taker_bp),
        vol_lambda: Rate::ZERO,
        vol_k: Rate::ZERO,
        vol_floor: Rate::ONE,
        vol_cap: Rate::ONE,
        oi_cap: 10_000,
        account_oi_share_bps: 10_000,
        max_mark_move_bps: 5_000,
        liquidation: None,
    }
}

struct H {
    engine: Engine,
    events: Vec<Event>,
    seq: u64,
}

impl H {
    /// One leveraged market (tick 1, prices 1..=100,000), accounts 0..=9, mark 1,000.
    fn new(risk: RiskConfig) -> H {
        let mut h = H {
            engine: Engine::new(EngineConfig::default()),
            events: Vec::new(),
            seq: 0,
        };
        let cfg = MarketConfig {
            tick: 1,
            lot_base_atoms: 1,
            min_price: Price(1),
            max_price: Price(100_000),
            max_qty: Qty(1_000),
            market_band_bps: 1_000,
            risk: Some(risk),
        };
        h.ok(CommandKind::AddMarket(Box::new(cfg)));
        for a in 0..10 {
            h.ok(CommandKind::OpenAccount(AccountId(a)));
        }
        h.ok(CommandKind::MarkPrice {
            market: M,
            price: Price(1_000),
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

    fn deposit(&mut self, a: u32, amount: i64) {
        self.ok(CommandKind::Deposit {
            account: AccountId(a),
            amount,
        });
    }

    fn order(
        &mut self,
        a: u32,
        side: Side,
        order_type: OrderType,
        qty: i64,
        reduce_only: bool,
    ) -> Option<RejectReason> {
        self.run(CommandKind::NewOrder(NewOrder {
            account: AccountId(a),
            market: M,
            client_id: ClientOrderId(self.seq),
            side,
            order_type,
            qty: Qty(qty),
            stp: StpMode::CancelAggressor,
            reduce_only,
        }))
    }

    /// `a` sells `qty` at `price` to `b` (a rests, b takes).
    fn trade(&mut self, a: u32, b: u32, price: i64, qty: i64) {
        assert_eq!(
            self.order(a, Side::Sell, OrderType::Limit(Price(price)), qty, false),
            None
        );
        assert_eq!(
            self.order(b, Side::Buy, OrderType::Ioc(Price(price)), qty, false),
            None
        );
    }

    fn size(&self, a: u32) -> i64 {
        self.engine.position(AccountId(a), M).unwrap().size
    }

    fn collateral(&self, a: u32) -> i128 {
        self.engine.account_risk(AccountId(a)).unwrap().collateral
    }
}

#[test]
fn fees_round_up_and_rebates_round_down() {
    let mut h = H::new(risk(-1, 5));
    h.deposit(1, 100_000);
    h.deposit(2, 100_000);
    h.trade(1, 2, 1_001, 30);
    // Notional 30,030. Taker 5 bp: 15.015 → 16 (up). Maker rebate 1 bp: 3.003 → 3 (down).
    let fill = h.events.iter().find_map(|e| match e.kind {
        EventKind::Fill {
            maker_fee,
            taker_fee,
            ..
        } => Some((maker_fee, taker_fee)),
        _ => None,
    });
    assert_eq!(fill, Some((-3, 16)));
    assert_eq!(h.engine.fee_ledger(), 13);
    assert_eq!(h.collateral(1), 100_003);
    assert_eq!(h.collateral(2), 99_984);
}

#[test]
fn realised_pnl_rounds_against_the_account() {
    let mut h = H::new(risk(0, 0));
    h.deposit(1, 100_000);
    h.deposit(2, 100_000);
    h.trade(1, 2, 1_000, 1);
    h.trade(1, 2, 1_001, 2);
    // Account 2: long 3 with cost 3,002. Account 1: short 3 with cost −3,002.
    assert_eq!(
        (h.size(2), h.engine.position(AccountId(2), M).unwrap().cost),
        (3, 3_002)
    );
    h.trade(2, 1, 1_001, 1);
    // Long sells 1 at 1,001: released = ceil(3,002 / 3) = 1,001, realised = 0 (exact +0.33).
    // Short buys 1 at 1,001: released = ceil(−3,002 / 3) = −1,000, realised = −1 (exact −0.33).
    let realised: Vec<(u32, i64)> = h
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::PositionChanged {
                account, realised, ..
            } => Some((account.0, realised)),
            _ => None,
        })
        .collect();
    assert_eq!(realised, vec![(2, 0), (1, -1)]);
    assert_eq!(h.collateral(2), 100_000);
    assert_eq!(h.collateral(1), 99_999);
}

#[test]
fn initial_margin_rounds_up_and_rejects_with_the_exact_shortfall() {
    let mut h = H::new(risk(0, 0));
    h.deposit(0, 1_000_000);
    h.order(0, Side::Sell, OrderType::Limit(Price(1_003)), 100, false);
    // 1 lot at mark 1,000, 10×: IM 100, no open loss, fee reserve 0 + 2 atoms → 102.
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(1_000)), 1, false),
        Some(RejectReason::InsufficientMargin { shortfall: 102 })
    );
    h.deposit(1, 101);
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(1_000)), 1, false),
        Some(RejectReason::InsufficientMargin { shortfall: 1 })
    );
    h.deposit(1, 1);
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(1_000)), 1, false),
        None
    );
    // Now with the resting lot: 2 lots of IM (200), an open loss of 3 for buying at 1,003
    // above the 1,000 mark, and the 2-atom reserve: 205 against 102 + 100.
    h.deposit(1, 100);
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Ioc(Price(1_003)), 1, false),
        Some(RejectReason::InsufficientMargin { shortfall: 3 })
    );
    // IM rounds up: 3 lots at mark 1,001 at 10× = 300.3 → 301.
    let mut g = H::new(risk(0, 0));
    g.ok(CommandKind::MarkPrice {
        market: M,
        price: Price(1_001),
    });
    g.deposit(1, 301 + 6);
    assert_eq!(
        g.order(1, Side::Buy, OrderType::Limit(Price(900)), 3, false),
        None
    );
    assert_eq!(g.engine.account_risk(AccountId(1)).unwrap().initial, 301);
}

#[test]
fn leverage_one_and_max_and_out_of_range() {
    let mut h = H::new(risk(0, 0));
    h.deposit(1, 1_000);
    for bad in [0, 11] {
        assert_eq!(
            h.run(CommandKind::SetLeverage {
                account: AccountId(1),
                market: M,
                leverage: bad
            }),
            Some(RejectReason::BadLeverage)
        );
    }
    h.ok(CommandKind::SetLeverage {
        account: AccountId(1),
        market: M,
        leverage: 1,
    });
    // At 1× one lot at mark 1,000 needs the full 1,000 plus the 2-atom reserve.
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(900)), 1, false),
        Some(RejectReason::InsufficientMargin { shortfall: 2 })
    );
    h.ok(CommandKind::SetLeverage {
        account: AccountId(1),
        market: M,
        leverage: 10,
    });
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(900)), 9, false),
        None
    );
    // Lowering leverage below what the resting order needs is refused: 9 lots at 1× = 9,000.
    assert_eq!(
        h.run(CommandKind::SetLeverage {
            account: AccountId(1),
            market: M,
            leverage: 1
        }),
        Some(RejectReason::InsufficientMargin { shortfall: 8_000 })
    );
}

/// Funding by index, checked by hand: the payment accrues to every position at once
/// (its pool's money counts it, rounded against the account), is settled when the
/// position changes, and the rounding remainder reaches the fee ledger in whole atoms.
#[test]
fn funding_accrues_by_index_and_settles_when_a_position_changes() {
    let mut h = H::new(risk(0, 0));
    for a in 1..=5 {
        h.deposit(a, 100_000);
    }
    h.trade(2, 1, 1_000, 1);
    h.trade(3, 1, 1_000, 1);
    h.trade(4, 1, 1_000, 1);
    // Account 1 long 3; accounts 2, 3, 4 short 1 each; account 5 has no position.
    h.ok(CommandKind::FundingRate {
        market: M,
        rate: bps(5),
    });
    // 5 bp = 2,147,483 × 2^-32 (truncated); × mark 1,000 = 2,147,483,000 × 2^-32 atoms
    // per lot (0.49999991 atoms). One event; no money moves.
    assert_eq!(
        h.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EventKind::FundingIndexed {
            market: M,
            delta: 2_147_483_000,
            index: 2_147_483_000,
        }]
    );
    // The long owes 3 × 0.49999991 = 1.49999973 → 2 atoms (up); each short is owed
    // 0.49999991 → 0 atoms (down).
    assert_eq!(h.collateral(1), 99_998);
    for a in 2..=5 {
        assert_eq!(h.collateral(a), 100_000, "account {a}");
    }
    assert_eq!(h.engine.fee_ledger(), 0);
    // Account 2 buys its short back from account 1: both positions change and settle.
    h.trade(1, 2, 1_000, 1);
    let settled: Vec<(u32, i64)> = h
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::PositionChanged {
                account, funding, ..
            } => Some((account.0, funding)),
            _ => None,
        })
        .collect();
    assert_eq!(settled, vec![(1, -2), (2, 0)]);
    // Remainders: the long paid 2 − 1.49999973 = 2,147,485,592 × 2^-32, the short gave
    // up 2,147,483,000 × 2^-32: together 4,294,968,592 ≥ 2^32, so one atom to the fee
    // ledger.
    assert_eq!(h.engine.fee_ledger(), 1);
    assert_eq!(h.collateral(1), 99_998);
    assert_eq!(h.collateral(2), 100_000);
    // −10 bp = −4,294,967 × 2^-32: shorts pay 0.99999993 atoms per lot. The index is now
    // −2,147,484,000: shorts 3 and 4 (snapshot 0) owe 0.50000023 → 1 atom each; the long
    // (2 lots, snapshot 2,147,483,000) is owed 2 × 0.99999993 → 1 atom (down).
    h.ok(CommandKind::FundingRate {
        market: M,
        rate: bps(-10),
    });
    assert_eq!(h.collateral(1), 99_999);
    assert_eq!(h.collateral(3), 99_999);
    assert_eq!(h.collateral(4), 99_999);
    assert_eq!(h.collateral(5), 100_000, "no position, no funding");
}

/// With no open interest the index moves and nothing else happens.
#[test]
fn funding_on_zero_open_interest_pays_nothing() {
    let mut h = H::new(risk(0, 0));
    h.deposit(1, 1_000);
    h.ok(CommandKind::FundingRate {
        market: M,
        rate: bps(50),
    });
    assert!(
        h.events
            .iter()
            .all(|e| matches!(e.kind, EventKind::FundingIndexed { .. })),
        "{:?}",
        h.events
    );
    assert_eq!(h.collateral(1), 1_000);
    assert_eq!(h.engine.fee_ledger(), 0);
    assert_eq!(
        h.run(CommandKind::FundingRate {
            market: M,
            rate: Rate::from_num(2)
        }),
        Some(RejectReason::FundingRateTooLarge)
    );
}

#[test]
fn edge_inputs_are_clear_rejections() {
    let mut h = H::new(risk(0, 0));
    let a = AccountId(1);
    assert_eq!(
        h.run(CommandKind::Deposit {
            account: a,
            amount: 0
        }),
        Some(RejectReason::NonPositiveAmount)
    );
    assert_eq!(
        h.run(CommandKind::Deposit {
            account: a,
            amount: i64::MIN
        }),
        Some(RejectReason::NonPositiveAmount)
    );
    assert_eq!(
        h.run(CommandKind::Deposit {
            account: AccountId(99_999),
            amount: 1
        }),
        Some(RejectReason::UnknownAccount)
    );
    assert_eq!(
        h.run(CommandKind::Withdraw {
            account: a,
            amount: i64::MAX
        }),
        Some(RejectReason::InsufficientMargin {
            shortfall: i64::MAX
        }),
        "zero collateral"
    );
    h.deposit(1, i64::MAX);
    h.deposit(1, i64::MAX);
    assert_eq!(h.collateral(1), 2 * i128::from(i64::MAX));
    h.ok(CommandKind::Withdraw {
        account: a,
        amount: i64::MAX,
    });
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(i64::MAX)), 1, false),
        Some(RejectReason::PriceOutOfBand)
    );
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(900)), i64::MAX, false),
        Some(RejectReason::QtyTooLarge)
    );
    assert_eq!(
        h.run(CommandKind::MarkPrice {
            market: M,
            price: Price(0)
        }),
        Some(RejectReason::MarkOutOfBand)
    );
    assert_eq!(
        h.run(CommandKind::MarkPrice {
            market: M,
            price: Price(i64::MAX)
        }),
        Some(RejectReason::MarkOutOfBand)
    );
    // Max move is 50%: 1,000 → 1,501 is a bad print, 1,500 is fine.
    assert_eq!(
        h.run(CommandKind::MarkPrice {
            market: M,
            price: Price(1_501)
        }),
        Some(RejectReason::BadOraclePrint)
    );
    h.ok(CommandKind::MarkPrice {
        market: M,
        price: Price(1_500),
    });
    assert_eq!(
        h.run(CommandKind::TransferIsolated {
            account: a,
            market: M,
            amount: 5
        }),
        Some(RejectReason::NotIsolated)
    );
}

#[test]
fn isolated_margin_confines_the_position_to_its_bucket() {
    let mut h = H::new(risk(0, 0));
    h.deposit(0, 1_000_000);
    h.order(0, Side::Sell, OrderType::Limit(Price(1_000)), 100, false);
    h.deposit(1, 10_000);
    h.ok(CommandKind::SetMarginMode {
        account: AccountId(1),
        market: M,
        isolated: true,
    });
    h.ok(CommandKind::TransferIsolated {
        account: AccountId(1),
        market: M,
        amount: 204,
    });
    // 2 lots need IM 200 + reserve 4 = 204: exactly the bucket, whatever the cross balance.
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Ioc(Price(1_000)), 3, false),
        Some(RejectReason::InsufficientMargin { shortfall: 102 })
    );
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Ioc(Price(1_000)), 2, false),
        None
    );
    assert_eq!(h.size(1), 2);
    // A 10% drop costs the bucket 200 of unrealised PnL; the cross balance is untouched.
    h.ok(CommandKind::MarkPrice {
        market: M,
        price: Price(900),
    });
    assert_eq!(
        h.engine
            .isolated_risk(AccountId(1), M)
            .map(|(equity, _)| equity),
        Some(4)
    );
    assert_eq!(
        h.engine.account_risk(AccountId(1)).unwrap().equity,
        10_000 - 204
    );
    // Taking money out of the bucket may not break its IM (2 × 900 / 10 = 180 > 4).
    assert_eq!(
        h.run(CommandKind::TransferIsolated {
            account: AccountId(1),
            market: M,
            amount: -1
        }),
        Some(RejectReason::InsufficientMargin { shortfall: 177 })
    );
    assert_eq!(
        h.run(CommandKind::SetMarginMode {
            account: AccountId(1),
            market: M,
            isolated: false
        }),
        Some(RejectReason::PositionOrOrdersOpen)
    );
}

#[test]
fn reduce_only_passes_when_it_reduces_and_is_refused_otherwise() {
    let mut h = H::new(risk(0, 0));
    h.deposit(0, 1_000_000);
    h.deposit(1, 1_000);
    h.trade(0, 1, 1_000, 3);
    h.order(0, Side::Buy, OrderType::Limit(Price(990)), 100, false);
    // Account 1 is long 3 at 1,000. A 40% drop leaves it far below IM.
    h.ok(CommandKind::MarkPrice {
        market: M,
        price: Price(600),
    });
    // A reduce-only sell may rest (a take-profit), margin or not: 2 of the 3 at 1,100.
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Limit(Price(1_100)), 2, true),
        None
    );
    // Reduce-only orders together close at most the position: 2 + 2 > 3.
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Limit(Price(1_200)), 2, true),
        Some(RejectReason::ReduceOnlyWouldIncrease)
    );
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Ioc(Price(990)), 4, true),
        Some(RejectReason::ReduceOnlyWouldIncrease)
    );
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Ioc(Price(990)), 1, true),
        Some(RejectReason::ReduceOnlyWouldIncrease)
    );
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Ioc(Price(990)), 1, true),
        None,
        "reducing always passes: 1 ≤ 3 − 2"
    );
    assert_eq!(h.size(1), 2);
}

#[test]
fn resting_reduce_only_orders_are_trimmed_to_what_the_position_needs() {
    let mut h = H::new(risk(0, 0));
    h.deposit(0, 1_000_000);
    h.deposit(1, 1_000_000);
    h.trade(0, 1, 1_000, 3);
    h.order(0, Side::Buy, OrderType::Limit(Price(990)), 100, false);
    // Account 1 is long 3: reduce-only sells of 2 at 1,100 (older) and 1 at 1,200.
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Limit(Price(1_100)), 2, true),
        None
    );
    let older = h
        .engine
        .level_orders(M, Side::Sell, Price(1_100))
        .next()
        .unwrap()
        .id;
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Limit(Price(1_200)), 1, true),
        None
    );
    let newer = h
        .engine
        .level_orders(M, Side::Sell, Price(1_200))
        .next()
        .unwrap()
        .id;
    // A plain sell of 2 at 990 leaves it long 1. At the end of the command the newest
    // keeps 1 − 2 < 0 (cancelled whole), the older keeps 1 − 0 = 1 of its 2.
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Ioc(Price(990)), 2, false),
        None
    );
    assert_eq!(h.size(1), 1);
    let trims: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Cancelled {
                order_id,
                qty,
                remaining,
                reason: cascade_core::CancelReason::ReduceOnly,
                ..
            } => Some((order_id, qty.0, remaining.0)),
            _ => None,
        })
        .collect();
    assert_eq!(trims, vec![(newer, 1, 0), (older, 1, 1)]);
    // The older keeps its place at 1,100 with 1 lot.
    let left: Vec<_> = h
        .engine
        .level_orders(M, Side::Sell, Price(1_100))
        .map(|o| (o.id, o.qty.0))
        .collect();
    assert_eq!(left, vec![(older, 1)]);
}

#[test]
fn open_interest_and_account_caps_bind() {
    let mut r = risk(0, 0);
    r.oi_cap = 10;
    r.account_oi_share_bps = 5_000; // 5 lots per account
    let mut h = H::new(r);
    for a in 0..4 {
        h.deposit(a, 1_000_000);
    }
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(900)), 6, false),
        Some(RejectReason::AccountOpenInterestCap)
    );
    h.trade(0, 1, 1_000, 5);
    h.trade(2, 3, 1_000, 5);
    // Accounts 1 and 3 long 5, accounts 0 and 2 short 5: each at its 5-lot cap.
    assert_eq!(h.engine.market_risk(M).unwrap().open_interest, 10);
    assert_eq!(
        h.order(0, Side::Sell, OrderType::Limit(Price(1_100)), 1, false),
        Some(RejectReason::AccountOpenInterestCap)
    );
    assert_eq!(
        h.order(1, Side::Buy, OrderType::Limit(Price(900)), 1, false),
        Some(RejectReason::AccountOpenInterestCap)
    );
    // Short 5 buying 6 ends long 1: its worst case is 5 lots, within the cap.
    assert_eq!(
        h.order(2, Side::Buy, OrderType::Limit(Price(900)), 6, false),
        None
    );
    let mut g = H::new(RiskConfig {
        oi_cap: 10,
        account_oi_share_bps: 10_000,
        ..risk(0, 0)
    });
    for a in 0..4 {
        g.deposit(a, 1_000_000);
    }
    g.trade(0, 1, 1_000, 10);
    assert_eq!(
        g.order(2, Side::Buy, OrderType::Limit(Price(900)), 1, false),
        Some(RejectReason::OpenInterestCap)
    );
    assert_eq!(
        g.order(1, Side::Sell, OrderType::Limit(Price(1_100)), 1, false),
        None,
        "reducing is not growth"
    );
}

#[test]
fn leverage_ratios_are_maintained_incrementally() {
    let mut h = H::new(risk(0, 0));
    h.deposit(1, 1_000);
    h.deposit(2, 3_000);
    h.trade(2, 1, 1_000, 5);
    // Account 1: notional 5,000 on equity 1,000 → 5×. Market: OI 5 × 1,000 on backing
    // 1,000 + 3,000 → 1.25×.
    assert_eq!(
        h.engine.account_risk(AccountId(1)).unwrap().leverage,
        Some(Rate::from_num(5))
    );
    let m = h.engine.market_risk(M).unwrap();
    assert_eq!(
        (m.open_interest, m.oi_notional, m.backing),
        (5, 5_000, 4_000)
    );
    assert_eq!(m.leverage, Some(Rate::from_num(1.25)));
    // Mark +10%: account 1 equity 1,500 on notional 5,500 → 3.666…; market 5,500 / 4,000.
    h.ok(CommandKind::MarkPrice {
        market: M,
        price: Price(1_100),
    });
    let lev = h
        .engine
        .account_risk(AccountId(1))
        .unwrap()
        .leverage
        .unwrap();
    assert_eq!(lev, Rate::from_bits((5_500i64 << 32) / 1_500));
    assert_eq!(
        h.engine.market_risk(M).unwrap().leverage,
        Some(Rate::from_num(1.375))
    );
}

#[test]
fn a_reduce_only_maker_never_trades_past_its_position() {
    let mut h = H::new(risk(0, 0));
    for a in 0..3 {
        h.deposit(a, 1_000_000);
    }
    h.trade(0, 1, 1_000, 10);
    // Account 1 is long 10 and rests a plain sell of 10, then a reduce-only sell of 10
    // at the same price (accepted: no other reduce-only order, 10 ≤ 10).
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Limit(Price(1_010)), 10, false),
        None
    );
    assert_eq!(
        h.order(1, Side::Sell, OrderType::Limit(Price(1_010)), 10, true),
        None
    );
    // A buyer of 20 takes the plain one first: account 1 is flat, so the reduce-only one
    // is cancelled whole before it could make it short; the buyer's other 10 go unfilled.
    assert_eq!(
        h.order(2, Side::Buy, OrderType::Ioc(Price(1_010)), 20, false),
        None
    );
    assert_eq!(h.size(1), 0);
    assert_eq!(h.size(2), 10);
    assert!(h.events.iter().any(|e| matches!(
        e.kind,
        EventKind::Cancelled {
            qty: Qty(10),
            remaining: Qty(0),
            reason: cascade_core::CancelReason::ReduceOnly,
            ..
        }
    )));
}
