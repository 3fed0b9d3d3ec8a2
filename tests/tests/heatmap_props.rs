//! The lab's read-side figures against brute force after every command of random
//! liquidation streams: the liquidation heatmap never holds more lots than the
//! single-market pools' positions, side by side (positions whose trigger lies beyond the
//! band are left out; the index itself is checked bucket by bucket against a brute-force
//! scan by `Engine::verify`, which `liquidation_props` runs after every command); the
//! exposure's resting depth within ±x% equals the orders counted one by one.

use cascade_core::lab::liquidatable_within;
use cascade_core::{AccountId, Engine, MarketId, Price, Side};
use cascade_tests::gen;
use proptest::prelude::*;

/// Long and short lots of positions in `m` held by pools with no other leveraged
/// position (isolated, or a cross pool whose only position is in `m`).
fn single_pool_lots(engine: &Engine, m: MarketId) -> (i64, i64) {
    let markets = engine.market_count() as u32;
    let (mut long, mut short) = (0, 0);
    for a in (0..gen::CONFIG.max_accounts).map(AccountId) {
        let Some(p) = engine.position(a, m).filter(|p| p.size != 0) else {
            continue;
        };
        let others = (0..markets).filter(|&k| k != m.0).any(|k| {
            let k = MarketId(k);
            engine.market_config(k).is_some_and(|c| c.risk.is_some())
                && engine
                    .position(a, k)
                    .is_some_and(|q| q.size != 0 && !q.isolated)
        });
        if p.isolated || !others {
            if p.size > 0 {
                long += p.size;
            } else {
                short -= p.size;
            }
        }
    }
    (long, short)
}

/// Lots resting on `side` of `m` at prices in `lo..=hi`, order by order.
fn resting(engine: &Engine, m: MarketId, side: Side, lo: i64, hi: i64) -> i64 {
    let Some(cfg) = engine.market_config(m) else {
        return 0;
    };
    let (lo, hi) = (lo.max(cfg.min_price.0), hi.min(cfg.max_price.0));
    let mut lots = 0;
    let mut p = lo + (cfg.tick - lo.rem_euclid(cfg.tick)) % cfg.tick;
    while p <= hi {
        lots += engine
            .level_orders(m, side, Price(p))
            .map(|o| o.qty.0)
            .sum::<i64>();
        p += cfg.tick;
    }
    lots
}

fn check(engine: &Engine) -> Result<(), String> {
    for m in (0..engine.market_count() as u32).map(MarketId) {
        let liquidating = engine
            .market_config(m)
            .and_then(|c| c.risk)
            .is_some_and(|r| r.liquidation.is_some());
        let Some(mark) = engine.market_risk(m).map(|r| r.mark).filter(|&p| p > 0) else {
            continue;
        };
        if liquidating {
            let (mut long, mut short) = (0, 0);
            engine.liquidation_heatmap(m, |_, _, l, s| {
                long += l;
                short += s;
            });
            let want = single_pool_lots(engine, m);
            if long > want.0 || short > want.1 {
                return Err(format!(
                    "market {}: heatmap {:?} vs positions {want:?}",
                    m.0,
                    (long, short)
                ));
            }
        }
        for e in liquidatable_within(engine, m, &[100, 500, 1_000]) {
            let reach = (i128::from(mark) * i128::from(e.move_bps) / 10_000) as i64;
            let bids = resting(engine, m, Side::Buy, mark - reach, i64::MAX / 4);
            let asks = resting(engine, m, Side::Sell, 0, mark + reach);
            if (e.bid_lots, e.ask_lots) != (bids, asks) {
                return Err(format!(
                    "market {} ±{} bps: depth {:?} vs orders {:?}",
                    m.0,
                    e.move_bps,
                    (e.bid_lots, e.ask_lots),
                    (bids, asks)
                ));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn heatmap_is_bounded_by_positions_and_depth_equals_orders_after_every_command(
        cmds in gen::arb_liquidation_stream(60, true)
    ) {
        let mut engine = Engine::new(gen::CONFIG);
        let mut events = Vec::new();
        for c in &cmds {
            events.clear();
            engine.apply(c, &mut events);
            if let Err(e) = check(&engine) {
                prop_assert!(false, "after {c:?}: {e}");
            }
        }
    }
}
