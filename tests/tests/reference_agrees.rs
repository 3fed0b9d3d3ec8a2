//! The engine and the reference book, driven by the same random command streams, must
//! emit identical event streams; the engine's structural invariants and the book-level
//! invariants (never crossed, levels equal their orders, fills at prices both sides
//! accepted) must hold after every command.

use cascade_core::{Engine, Event, EventKind, Side};
use cascade_tests::gen::{arb_stream, CONFIG};
use cascade_tests::reference::RefEngine;
use proptest::prelude::*;

/// Cases per run: 10,000 in CI; `PROPTEST_CASES` raises it locally.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Checks that every fill in `events` is at a price both sides accepted.
fn fills_respect_limits(events: &[Event]) -> Result<(), String> {
    let Some(EventKind::Accepted {
        side, price: limit, ..
    }) = events.first().map(|e| e.kind)
    else {
        return Ok(());
    };
    for e in events {
        if let EventKind::Fill {
            price, taker_side, ..
        } = e.kind
        {
            if taker_side == side && !side.crosses(limit, price) {
                return Err(format!("fill at {price:?} beyond taker limit {limit:?}"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn engine_and_reference_emit_identical_events(stream in arb_stream(80)) {
        let mut engine = Engine::new(CONFIG);
        let mut reference = RefEngine::new(CONFIG);
        let mut got = Vec::new();
        for cmd in &stream {
            got.clear();
            engine.apply(cmd, &mut got);
            let want = reference.apply(cmd);
            prop_assert_eq!(&got, &want, "command {:?}", cmd);
            prop_assert!(engine.verify().is_ok(), "{:?} after {:?}", engine.verify(), cmd);
            prop_assert!(fills_respect_limits(&got).is_ok(), "{:?}", fills_respect_limits(&got));
            for (i, e) in got.iter().enumerate() {
                prop_assert_eq!((e.seq, e.index as usize), (cmd.seq, i));
            }
            for m in 0..engine.market_count() {
                let m = cascade_core::MarketId(m as u32);
                for side in [Side::Buy, Side::Sell] {
                    let mut levels = Vec::new();
                    engine.depth(m, side, usize::MAX, |p, q, _| levels.push((p, q)));
                    prop_assert_eq!(&levels, &reference.levels(m, side));
                }
                if let (Some((bid, _)), Some((ask, _))) = (engine.best(m, Side::Buy), engine.best(m, Side::Sell)) {
                    prop_assert!(bid < ask, "crossed book {:?}/{:?}", bid, ask);
                }
            }
        }
    }
}

/// The comparison above is only as good as the streams: check that they reach every
/// outcome (each rejection the generator can provoke, every cancel reason, both kinds of
/// replace, fills), so a generator change cannot quietly stop exercising a path.
#[test]
fn generated_streams_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeSet;

    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    for _ in 0..3000 {
        let stream = arb_stream(80)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        let mut engine = Engine::new(CONFIG);
        let mut events = Vec::new();
        for cmd in &stream {
            engine.apply(cmd, &mut events);
        }
        for e in events {
            seen.insert(match e.kind {
                EventKind::Rejected(r) => format!("reject {r:?}"),
                EventKind::Cancelled {
                    reason, remaining, ..
                } => format!("cancel {reason:?} partial={}", remaining.0 > 0),
                EventKind::Replaced { kept_priority, .. } => {
                    format!("replace kept={kept_priority}")
                }
                EventKind::Fill { .. } => "fill".to_owned(),
                _ => continue,
            });
        }
    }
    let expected = [
        "reject UnknownMarket",
        "reject UnknownAccount",
        "reject UnknownOrder",
        "reject AccountExists",
        "reject MarketHalted",
        "reject NonPositiveQty",
        "reject QtyTooLarge",
        "reject PriceOffTick",
        "reject PriceOutOfBand",
        "reject NoLiquidity",
        "reject PostOnlyWouldTake",
        "reject DuplicateClientId",
        "reject OrderCapacity",
        "cancel User partial=false",
        "cancel MassCancel partial=false",
        "cancel Unfilled partial=false",
        "cancel FillOrKill partial=false",
        "cancel SelfTrade partial=false",
        "cancel SelfTrade partial=true",
        "replace kept=true",
        "replace kept=false",
        "fill",
    ];
    for want in expected {
        assert!(
            seen.contains(want),
            "generated streams never produced `{want}`; saw {seen:?}"
        );
    }
}
