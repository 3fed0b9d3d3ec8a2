//! The engine and the reference book, driven by the same random command streams, must
//! emit identical event streams; the engine's structural invariants and the book-level
//! invariants (never crossed, levels equal their orders, fills at prices both sides
//! accepted) must hold after every command.

use cascade_core::RejectReason;
use cascade_core::{AccountId, Command, CommandKind, Engine, Event, EventKind, MarketId, Side};
use cascade_tests::gen;
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

/// Ledgers, positions and margin figures of the engine against the reference's.
fn ledgers_agree(engine: &Engine, reference: &RefEngine) -> Result<(), String> {
    for a in 0..CONFIG.max_accounts {
        let risk = engine.account_risk(AccountId(a)).ok_or("account")?;
        let (equity, im, mm) = reference.cross_margin(a);
        let got = (risk.collateral, risk.equity, risk.initial, risk.maintenance);
        let want = (reference.collateral_of(a), equity, im, mm);
        if got != want {
            return Err(format!(
                "account {a}: (collateral, equity, IM, MM) {got:?} vs reference {want:?}"
            ));
        }
        for m in 0..engine.market_count() {
            let p = engine
                .position(AccountId(a), MarketId(m as u32))
                .ok_or("position")?;
            let r = reference.pos[a as usize][m];
            let bucket = reference.bucket_of(a, m);
            if (p.size, p.cost, p.isolated, p.bucket) != (r.size, r.cost, r.isolated, bucket) {
                return Err(format!("account {a} market {m}: {p:?} vs reference {r:?}"));
            }
        }
    }
    for m in 0..engine.market_count() {
        if let Some(mr) = engine.market_risk(MarketId(m as u32)) {
            let want = reference.market_totals(m);
            if (mr.open_interest, mr.backing) != want {
                return Err(format!(
                    "market {m}: (OI, backing) {:?} vs reference {want:?}",
                    (mr.open_interest, mr.backing)
                ));
            }
        }
    }
    if engine.fee_ledger() != reference.fee_ledger {
        return Err(format!(
            "fee ledger {} vs reference {}",
            engine.fee_ledger(),
            reference.fee_ledger
        ));
    }
    Ok(())
}

/// An accepted order that could add exposure leaves its account at or above IM.
fn order_left_account_above_im(
    cmd: &Command,
    events: &[Event],
    reference: &RefEngine,
) -> Result<(), String> {
    let (account, market) = match (&cmd.kind, events.first().map(|e| e.kind)) {
        (CommandKind::NewOrder(o), Some(EventKind::Accepted { .. })) if !o.reduce_only => {
            (o.account, o.market)
        }
        (
            CommandKind::CancelReplace { account, .. },
            Some(EventKind::Replaced {
                kept_priority: false,
                ..
            }),
        ) => {
            let market = events.iter().find_map(|e| match e.kind {
                EventKind::Level { market, .. } => Some(market),
                _ => None,
            });
            (*account, market.ok_or("replace without a level event")?)
        }
        _ => return Ok(()),
    };
    if gen::markets()[market.0 as usize].risk.is_none() {
        return Ok(());
    }
    let (equity, im) = reference.pool_of_market(account.0, market.0 as usize);
    if equity < im {
        return Err(format!(
            "account {} below IM after {cmd:?}: equity {equity} < IM {im}",
            account.0
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn engine_and_reference_emit_identical_events(stream in arb_stream(80)) {
        agree(CONFIG, &stream)?;
    }

    /// Four position slots for five accounts × two leveraged markets: new orders,
    /// leverage and isolated-mode settings are refused with `PositionCapacity` exactly
    /// when the reference counts every pair holding state, and slots come back when
    /// positions and orders close.
    #[test]
    fn tight_position_capacity_agrees_with_the_reference(stream in arb_stream(80)) {
        agree(TIGHT, &stream)?;
    }
}

/// [`CONFIG`] with fewer position slots than the streams' pairs.
const TIGHT: cascade_core::EngineConfig = cascade_core::EngineConfig {
    max_positions: 4,
    max_conditionals: 4,
    ..CONFIG
};

/// Runs one stream through the engine and the reference under `cfg` with every check.
fn agree(
    cfg: cascade_core::EngineConfig,
    stream: &[cascade_core::Command],
) -> Result<(), TestCaseError> {
    {
        let mut engine = Engine::new(cfg);
        let mut reference = RefEngine::new(cfg);
        let mut got = Vec::new();
        let mut net = 0i128;
        for cmd in stream {
            // A replace of a reduce-only order is checked by the reduce-only rule, not
            // against initial margin (SEMANTICS.md): the IM property does not apply.
            let reduce_only_replace = matches!(
                cmd.kind,
                CommandKind::CancelReplace { order_id, .. } if reference.is_reduce_only(order_id)
            );
            got.clear();
            engine.apply(cmd, &mut got);
            let want = reference.apply(cmd);
            prop_assert_eq!(&got, &want, "command {:?}", cmd);
            prop_assert!(
                engine.verify().is_ok(),
                "{:?} after {:?}",
                engine.verify(),
                cmd
            );
            prop_assert!(
                fills_respect_limits(&got).is_ok(),
                "{:?}",
                fills_respect_limits(&got)
            );
            for (i, e) in got.iter().enumerate() {
                prop_assert_eq!((e.seq, e.index as usize), (cmd.seq, i));
            }
            net += cascade_tests::harness::net_inflow(cmd, &got);
            prop_assert_eq!(
                engine.money_accounted(),
                net,
                "money not conserved after {:?}",
                cmd
            );
            let ledgers = ledgers_agree(&engine, &reference);
            prop_assert!(ledgers.is_ok(), "{:?} after {:?}", ledgers, cmd);
            if !reduce_only_replace {
                let im = order_left_account_above_im(cmd, &got, &reference);
                prop_assert!(im.is_ok(), "{:?}", im);
            }
            for m in 0..engine.market_count() {
                let m = MarketId(m as u32);
                for side in [Side::Buy, Side::Sell] {
                    let mut levels = Vec::new();
                    engine.depth(m, side, usize::MAX, |p, q, _| levels.push((p, q)));
                    prop_assert_eq!(&levels, &reference.levels(m, side));
                }
                if let (Some((bid, _)), Some((ask, _))) =
                    (engine.best(m, Side::Buy), engine.best(m, Side::Sell))
                {
                    prop_assert!(bid < ask, "crossed book {:?}/{:?}", bid, ask);
                }
            }
        }
    }
    Ok(())
}

/// The tight configuration does reach the capacity rejection (else the property above
/// is vacuous), and slots are given back: some stream holds a full arena and later
/// fewer pairs again.
#[test]
fn tight_streams_reach_position_capacity() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut rejected, mut reused) = (0, 0);
    for _ in 0..500 {
        let stream = arb_stream(80)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        let mut engine = Engine::new(TIGHT);
        let (mut events, mut was_full) = (Vec::new(), false);
        for cmd in &stream {
            events.clear();
            engine.apply(cmd, &mut events);
            rejected += events
                .iter()
                .filter(|e| e.kind == EventKind::Rejected(RejectReason::PositionCapacity))
                .count();
            was_full |= engine.positions_held() == TIGHT.max_positions;
            if was_full && engine.positions_held() < TIGHT.max_positions {
                reused += 1;
                was_full = false;
            }
        }
    }
    assert!(rejected > 0, "no PositionCapacity rejection generated");
    assert!(reused > 0, "no slot was ever given back from a full arena");
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
                EventKind::Rejected(RejectReason::InsufficientMargin { .. }) => {
                    "reject InsufficientMargin".to_owned()
                }
                EventKind::Rejected(r) => format!("reject {r:?}"),
                EventKind::FundingIndexed { .. } => "funding".to_owned(),
                EventKind::PositionChanged { funding, .. } if funding != 0 => {
                    "funding settled".to_owned()
                }
                EventKind::PositionChanged { .. } => "position".to_owned(),
                EventKind::IsolatedTransferred { .. } => "isolated transfer".to_owned(),
                EventKind::Cancelled {
                    reason, remaining, ..
                } => format!("cancel {reason:?} partial={}", remaining.0 > 0),
                EventKind::Replaced { kept_priority, .. } => {
                    format!("replace kept={kept_priority}")
                }
                EventKind::Fill { .. } => "fill".to_owned(),
                EventKind::ConditionalAccepted { .. } => "conditional accepted".to_owned(),
                EventKind::ConditionalTriggered { .. } => "conditional fired".to_owned(),
                EventKind::ConditionalRejected { reason, .. } => match reason {
                    RejectReason::InsufficientMargin { .. } => {
                        "conditional rejected InsufficientMargin".to_owned()
                    }
                    r => format!("conditional rejected {r:?}"),
                },
                EventKind::ConditionalCancelled { reason, .. } => {
                    format!("conditional cancel {reason:?}")
                }
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
        "reject AccountOrderCapacity",
        "reject NotLeveraged",
        "reject InsufficientMargin",
        "reject NonPositiveAmount",
        "reject BadLeverage",
        "reject PositionOrOrdersOpen",
        "reject NotIsolated",
        "reject ReduceOnlyWouldIncrease",
        "reject AccountOpenInterestCap",
        "reject PositionLimit",
        "reject BadOraclePrint",
        "reject MarkOutOfBand",
        "reject FundingRateTooLarge",
        "funding",
        "funding settled",
        "position",
        "isolated transfer",
        "cancel User partial=false",
        "cancel MassCancel partial=false",
        "cancel Unfilled partial=false",
        "cancel FillOrKill partial=false",
        "cancel SelfTrade partial=false",
        "cancel SelfTrade partial=true",
        "replace kept=true",
        "replace kept=false",
        "fill",
        "reject WouldTriggerNow",
        "reject ConditionalCapacity",
        "conditional accepted",
        "conditional fired",
        "conditional rejected InsufficientMargin",
        "conditional rejected ReduceOnlyWouldIncrease",
        "conditional cancel User",
        "conditional cancel MassCancel",
    ];
    for want in expected {
        assert!(
            seen.contains(want),
            "generated streams never produced `{want}`; saw {seen:?}"
        );
    }
}
