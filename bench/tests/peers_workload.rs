//! The shared peer workload keeps its fairness promises: limit adds never trade (so no
//! book's crossing-limit semantics matter), market orders do, and it is deterministic.

use cascade_bench::peers::{generate, Book, Cascade, Op, Tally};

#[test]
fn adds_never_trade_and_market_orders_do() {
    let ops = generate(50_000, 7, 2_000);
    assert_eq!(ops, generate(50_000, 7, 2_000), "same seed, same workload");
    let mut book = Cascade::new();
    let mut market_fills = 0;
    for op in &ops {
        let mut tally = Tally::default();
        book.apply(op, &mut tally);
        match op {
            Op::Add { .. } => assert_eq!(tally, Tally::default(), "an add traded: {op:?}"),
            Op::Market { .. } => market_fills += tally.fills,
            Op::Cancel { .. } => assert_eq!(tally.fills, 0),
        }
    }
    assert!(
        market_fills > 1_000,
        "market orders must trade: {market_fills}"
    );
}
