//! Hand-checked scenarios for each order type, replace rule, self-trade mode and
//! rejection. Expected values are worked out from the rules in docs/SEMANTICS.md, not
//! taken from the engine's output.

use cascade_core::{
    AccountId, CancelReason, CommandKind, EventKind, MarketId, OrderType, Price, Qty, RejectReason,
    Side, StpMode,
};
use cascade_tests::harness::Harness;

use Side::{Buy, Sell};

#[test]
fn fills_follow_price_then_time_priority() {
    let mut h = Harness::new();
    let a = h.limit(1, Sell, 101, 5);
    let b = h.limit(2, Sell, 100, 5);
    let c = h.limit(3, Sell, 100, 5);
    h.order(
        4,
        Buy,
        OrderType::Ioc(Price(101)),
        12,
        StpMode::CancelAggressor,
    );
    // Best price first (100), oldest first within it (b before c), then 101.
    assert_eq!(h.fills(), vec![(b, 100, 5), (c, 100, 5), (a, 101, 2)]);
    assert_eq!(h.engine.best(MarketId(0), Sell), Some((Price(101), Qty(3))));
}

#[test]
fn size_decrease_keeps_time_priority() {
    let mut h = Harness::new();
    let a = h.limit(1, Buy, 50, 10);
    let b = h.limit(2, Buy, 50, 10);
    h.run(CommandKind::CancelReplace {
        account: AccountId(1),
        order_id: a,
        price: Price(50),
        qty: Qty(4),
    });
    assert_eq!(h.queue(Buy, 50), vec![a, b]);
    h.order(
        3,
        Sell,
        OrderType::Ioc(Price(50)),
        5,
        StpMode::CancelAggressor,
    );
    assert_eq!(h.fills(), vec![(a, 50, 4), (b, 50, 1)]);
}

#[test]
fn size_increase_loses_time_priority() {
    let mut h = Harness::new();
    let a = h.limit(1, Buy, 50, 10);
    let b = h.limit(2, Buy, 50, 10);
    h.run(CommandKind::CancelReplace {
        account: AccountId(1),
        order_id: a,
        price: Price(50),
        qty: Qty(11),
    });
    assert_eq!(h.queue(Buy, 50), vec![b, a]);
}

#[test]
fn price_change_loses_time_priority_and_can_trade() {
    let mut h = Harness::new();
    let a = h.limit(1, Buy, 50, 10);
    let b = h.limit(2, Buy, 49, 10);
    h.run(CommandKind::CancelReplace {
        account: AccountId(1),
        order_id: a,
        price: Price(49),
        qty: Qty(10),
    });
    assert_eq!(h.queue(Buy, 49), vec![b, a]);
    let s = h.limit(3, Sell, 60, 3);
    // Replacing the bid up through the ask trades at the resting ask's price.
    h.run(CommandKind::CancelReplace {
        account: AccountId(1),
        order_id: a,
        price: Price(60),
        qty: Qty(10),
    });
    assert_eq!(h.fills(), vec![(s, 60, 3)]);
    assert_eq!(h.queue(Buy, 60), vec![a]);
    assert_eq!(h.engine.order(a).map(|o| o.qty), Some(Qty(7)));
}

#[test]
fn fok_fills_completely_or_leaves_no_trace() {
    let mut h = Harness::new();
    let a = h.limit(1, Sell, 100, 5);
    let b = h.limit(2, Sell, 101, 5);
    h.order(
        3,
        Buy,
        OrderType::Fok(Price(101)),
        11,
        StpMode::CancelAggressor,
    );
    assert!(h.fills().is_empty());
    assert!(matches!(
        h.events.last().unwrap().kind,
        EventKind::Cancelled {
            reason: CancelReason::FillOrKill,
            ..
        }
    ));
    assert_eq!(h.queue(Sell, 100), vec![a]);
    assert_eq!(h.engine.order(a).map(|o| o.qty), Some(Qty(5)));
    h.order(
        3,
        Buy,
        OrderType::Fok(Price(101)),
        10,
        StpMode::CancelAggressor,
    );
    assert_eq!(h.fills(), vec![(a, 100, 5), (b, 101, 5)]);
}

#[test]
fn fok_does_not_count_own_orders_as_liquidity() {
    let mut h = Harness::new();
    h.limit(1, Sell, 100, 5);
    h.limit(2, Sell, 100, 5);
    // Account 1's own 5 lots would be cancelled, not traded: only 5 lots are fillable.
    h.order(
        1,
        Buy,
        OrderType::Fok(Price(100)),
        6,
        StpMode::CancelResting,
    );
    assert!(h.fills().is_empty());
    assert_eq!(
        h.engine.best(MarketId(0), Sell),
        Some((Price(100), Qty(10)))
    );
}

#[test]
fn post_only_is_rejected_if_it_would_take() {
    let mut h = Harness::new();
    h.limit(1, Sell, 100, 5);
    assert_eq!(
        h.order(
            2,
            Buy,
            OrderType::PostOnly(Price(100)),
            1,
            StpMode::CancelAggressor
        ),
        None
    );
    assert_eq!(h.rejected(), Some(RejectReason::PostOnlyWouldTake));
    let p = h
        .order(
            2,
            Buy,
            OrderType::PostOnly(Price(99)),
            1,
            StpMode::CancelAggressor,
        )
        .unwrap();
    assert_eq!(h.queue(Buy, 99), vec![p]);
    // A replace that would make it take is refused and leaves it untouched.
    h.run(CommandKind::CancelReplace {
        account: AccountId(2),
        order_id: p,
        price: Price(100),
        qty: Qty(1),
    });
    assert_eq!(h.rejected(), Some(RejectReason::PostOnlyWouldTake));
    assert_eq!(h.queue(Buy, 99), vec![p]);
}

#[test]
fn market_order_never_fills_beyond_its_band() {
    let mut h = Harness::new();
    // Band is 10% of the best ask at arrival: 100 -> limit 110.
    let a = h.limit(1, Sell, 100, 2);
    let b = h.limit(1, Sell, 110, 2);
    h.limit(1, Sell, 111, 2);
    let id = h
        .order(2, Buy, OrderType::Market, 10, StpMode::CancelAggressor)
        .unwrap();
    assert_eq!(h.fills(), vec![(a, 100, 2), (b, 110, 2)]);
    let last = h.events.last().unwrap().kind;
    assert_eq!(
        last,
        EventKind::Cancelled {
            order_id: id,
            account: AccountId(2),
            qty: Qty(6),
            remaining: Qty(0),
            reason: CancelReason::Unfilled
        }
    );
    assert_eq!(
        h.order(2, Sell, OrderType::Market, 1, StpMode::CancelAggressor),
        None
    );
    assert_eq!(h.rejected(), Some(RejectReason::NoLiquidity));
}

#[test]
fn self_trade_cancel_resting_removes_own_order_and_keeps_matching() {
    let mut h = Harness::new();
    let own = h.limit(1, Sell, 100, 5);
    let other = h.limit(2, Sell, 100, 5);
    h.order(
        1,
        Buy,
        OrderType::Ioc(Price(100)),
        5,
        StpMode::CancelResting,
    );
    assert_eq!(h.fills(), vec![(other, 100, 5)]);
    assert!(h.engine.order(own).is_none());
}

#[test]
fn self_trade_cancel_aggressor_stops_the_incoming_order() {
    let mut h = Harness::new();
    let other = h.limit(2, Sell, 100, 3);
    let own = h.limit(1, Sell, 100, 5);
    h.limit(2, Sell, 100, 5);
    h.order(
        1,
        Buy,
        OrderType::Limit(Price(100)),
        10,
        StpMode::CancelAggressor,
    );
    assert_eq!(h.fills(), vec![(other, 100, 3)]);
    assert_eq!(h.engine.order(own).map(|o| o.qty), Some(Qty(5)));
    assert!(
        h.engine.best(MarketId(0), Buy).is_none(),
        "the aggressor must not rest"
    );
}

#[test]
fn self_trade_decrement_both_reduces_without_trading() {
    let mut h = Harness::new();
    let own = h.limit(1, Sell, 100, 5);
    let other = h.limit(2, Sell, 100, 5);
    h.order(
        1,
        Buy,
        OrderType::Ioc(Price(100)),
        7,
        StpMode::DecrementBoth,
    );
    // 5 lots cancelled on both sides, the remaining 2 trade with the other account.
    assert_eq!(h.fills(), vec![(other, 100, 2)]);
    assert!(h.engine.order(own).is_none());
    assert_eq!(h.engine.order(other).map(|o| o.qty), Some(Qty(3)));
}

#[test]
fn mass_cancel_can_be_limited_to_one_market() {
    let mut h = Harness::new();
    h.run(CommandKind::AddMarket(Box::new(
        cascade_tests::harness::MARKET,
    )));
    let a = h.limit(1, Buy, 50, 1);
    h.run(CommandKind::NewOrder(cascade_core::NewOrder {
        account: AccountId(1),
        market: MarketId(1),
        client_id: cascade_core::ClientOrderId(999),
        side: Buy,
        order_type: OrderType::Limit(Price(50)),
        qty: Qty(1),
        stp: StpMode::CancelAggressor,
        reduce_only: false,
    }));
    h.run(CommandKind::MassCancel {
        account: AccountId(1),
        market: Some(MarketId(0)),
    });
    assert!(h.engine.order(a).is_none());
    assert_eq!(h.engine.open_orders(), 1);
    h.run(CommandKind::MassCancel {
        account: AccountId(1),
        market: None,
    });
    assert_eq!(h.engine.open_orders(), 0);
}

#[test]
fn bad_input_is_rejected_with_a_reason_not_a_panic() {
    let mut h = Harness::new();
    let cases: [(u32, u32, OrderType, i64, RejectReason); 8] = [
        (
            1,
            7,
            OrderType::Limit(Price(5)),
            1,
            RejectReason::UnknownMarket,
        ),
        (
            77,
            0,
            OrderType::Limit(Price(5)),
            1,
            RejectReason::UnknownAccount,
        ),
        (
            1,
            0,
            OrderType::Limit(Price(5)),
            0,
            RejectReason::NonPositiveQty,
        ),
        (
            1,
            0,
            OrderType::Limit(Price(5)),
            -3,
            RejectReason::NonPositiveQty,
        ),
        (
            1,
            0,
            OrderType::Limit(Price(5)),
            1001,
            RejectReason::QtyTooLarge,
        ),
        (
            1,
            0,
            OrderType::Limit(Price(0)),
            1,
            RejectReason::PriceOutOfBand,
        ),
        (
            1,
            0,
            OrderType::Limit(Price(i64::MAX)),
            1,
            RejectReason::PriceOutOfBand,
        ),
        (
            1,
            0,
            OrderType::Limit(Price(i64::MIN)),
            i64::MAX,
            RejectReason::QtyTooLarge,
        ),
    ];
    for (account, market, order_type, qty, want) in cases {
        h.run(CommandKind::NewOrder(cascade_core::NewOrder {
            account: AccountId(account),
            market: MarketId(market),
            client_id: cascade_core::ClientOrderId(1),
            side: Buy,
            order_type,
            qty: Qty(qty),
            stp: StpMode::CancelAggressor,
            reduce_only: false,
        }));
        assert_eq!(h.rejected(), Some(want), "{order_type:?} qty {qty}");
    }
    h.run(CommandKind::Cancel {
        account: AccountId(1),
        order_id: cascade_core::OrderId(u64::MAX),
    });
    assert_eq!(h.rejected(), Some(RejectReason::UnknownOrder));
    let a = h.limit(1, Buy, 5, 1);
    h.run(CommandKind::Cancel {
        account: AccountId(2),
        order_id: a,
    });
    assert_eq!(
        h.rejected(),
        Some(RejectReason::UnknownOrder),
        "another account's order is not yours to cancel"
    );
    h.run(CommandKind::HaltMarket(MarketId(0)));
    assert_eq!(
        h.order(
            1,
            Buy,
            OrderType::Limit(Price(5)),
            1,
            StpMode::CancelAggressor
        ),
        None
    );
    assert_eq!(h.rejected(), Some(RejectReason::MarketHalted));
    h.run(CommandKind::Cancel {
        account: AccountId(1),
        order_id: a,
    });
    assert_eq!(h.rejected(), None, "cancels still work in a halted market");
}

#[test]
fn duplicate_live_client_id_is_rejected_until_the_order_is_gone() {
    let mut h = Harness::new();
    let new = |price| {
        CommandKind::NewOrder(cascade_core::NewOrder {
            account: AccountId(1),
            market: MarketId(0),
            client_id: cascade_core::ClientOrderId(42),
            side: Buy,
            order_type: OrderType::Limit(Price(price)),
            qty: Qty(1),
            stp: StpMode::CancelAggressor,
            reduce_only: false,
        })
    };
    h.run(new(10));
    let first = h
        .engine
        .level_orders(MarketId(0), Buy, Price(10))
        .next()
        .unwrap()
        .id;
    h.run(new(11));
    assert_eq!(h.rejected(), Some(RejectReason::DuplicateClientId));
    h.run(CommandKind::Cancel {
        account: AccountId(1),
        order_id: first,
    });
    h.run(new(11));
    assert_eq!(h.rejected(), None);
}
