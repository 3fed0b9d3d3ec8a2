//! Liquidation over random multi-account, multi-market streams with large mark moves
//! (two liquidating markets: pro-rata and queue ADL): the engine agrees event for event
//! with the brute-force reference model, every invariant holds after every command, and
//! ring capacity never changes the event log.

use cascade_core::{AccountId, Command, Engine, EngineConfig, EventKind, HashSink, MarketId};
use cascade_tests::gen;
use cascade_tests::reference::RefEngine;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn config(ring: u32) -> EngineConfig {
    EngineConfig {
        liquidation_ring: ring,
        ..gen::CONFIG
    }
}

/// Every invariant of the liquidation contract, after one command: verify() (books,
/// ledgers, positions sum to zero, both trigger indexes), money (bad debt included), a
/// non-negative fee ledger, a solvent fund wherever it can still be deleveraged, no pool
/// with a position in a liquidating market that is not halted below MM, no pool whose
/// positions are all in such markets with negative equity, no pool resting orders below
/// IM. `liquidating`: the markets with liquidation on; `halted`: per market.
fn check(engine: &Engine, net: i128, liquidating: &[u32], halted: &[bool]) -> Result<(), String> {
    engine.verify()?; // books, ledgers, positions sum to zero (fund included), trigger index
    if engine.money_accounted() != net {
        return Err(format!(
            "money {} vs net deposits {net}",
            engine.money_accounted()
        ));
    }
    if engine.fee_ledger() < 0 {
        return Err(format!("fee ledger {}", engine.fee_ledger()));
    }
    let live = |m: u32| liquidating.contains(&m) && !halted[m as usize];
    // Fund cash may be negative; its equity may not while solvency could still
    // deleverage it: some account holds a position opposite to the fund's in a
    // liquidating market that is not halted.
    for m in (0..engine.market_count() as u32).filter(|&m| live(m)) {
        let s = engine.fund_position(MarketId(m)).map_or(0, |f| f.0);
        let opposed = s != 0
            && (0..gen::CONFIG.max_accounts).any(|a| {
                engine
                    .position(AccountId(a), MarketId(m))
                    .is_some_and(|p| p.size.signum() == -s.signum())
            });
        // The fund of this market: its own, or the shared one.
        let fund = engine.market_fund(MarketId(m)).unwrap_or(engine.fund());
        if opposed && fund.equity < 0 {
            return Err(format!(
                "market {m}'s fund equity {} with opposite holders",
                fund.equity
            ));
        }
    }
    for a in (0..gen::CONFIG.max_accounts).map(AccountId) {
        let pools = [None, Some(MarketId(1)), Some(MarketId(2))];
        for market in pools {
            let isolated =
                market.is_some_and(|m| engine.position(a, m).is_some_and(|p| p.isolated));
            if market.is_some() && !isolated {
                continue;
            }
            let in_pool = |m: u32| {
                engine.position(a, MarketId(m)).is_some_and(|p| {
                    p.size != 0 && market.map_or(!p.isolated, |x| x.0 == m && p.isolated)
                })
            };
            let resting = liquidating.iter().any(|&m| {
                engine.position(a, MarketId(m)).is_some_and(|p| {
                    (p.buy_open != 0 || p.sell_open != 0)
                        && market.map_or(!p.isolated, |x| x.0 == m && p.isolated)
                })
            });
            let (equity, im) = engine.pool_initial(a, market).expect("account in range");
            if resting && equity < im {
                return Err(format!(
                    "account {} pool {market:?} rests orders below IM: equity {equity} < {im}",
                    a.0
                ));
            }
            let (equity, mm) = engine.pool_risk(a, market).expect("account in range");
            let markets = 0..engine.market_count() as u32;
            if markets.clone().any(|m| in_pool(m) && live(m)) && equity < mm {
                return Err(format!(
                    "account {} pool {market:?} left below MM: equity {equity} < {mm}",
                    a.0
                ));
            }
            // A flat pool counts too ("no pool whose positions are all in liquidating
            // markets has negative equity"), as long as none is in a halted market.
            if markets.clone().all(|m| !in_pool(m) || live(m)) && equity < 0 {
                return Err(format!(
                    "account {} pool {market:?} left with negative equity {equity}",
                    a.0
                ));
            }
        }
    }
    Ok(())
}

/// Money, positions, the insurance fund, the fee ledger and bad debt of the engine
/// against the reference's.
fn ledgers_agree(engine: &Engine, reference: &RefEngine) -> Result<(), String> {
    let fund = engine.fund();
    let got = (fund.cash, fund.equity, fund.haircut);
    let want = (
        reference.insurance,
        reference.fund_equity(),
        reference.fund_haircut(),
    );
    if got != want || engine.insurance_fund() != reference.insurance {
        return Err(format!(
            "fund (cash, equity, haircut) {got:?} vs reference {want:?}"
        ));
    }
    for m in 0..engine.market_count() {
        let got = engine
            .market_fund(MarketId(m as u32))
            .map(|f| (f.cash, f.equity, f.haircut));
        let want = reference.market_fund_equity(m).map(|e| {
            (
                reference.fund_cash[m],
                e,
                reference.market_fund_haircut(m).expect("own fund"),
            )
        });
        if got != want {
            return Err(format!(
                "market {m}'s own fund {got:?} vs reference {want:?}"
            ));
        }
    }
    let got = (engine.fee_ledger(), engine.bad_debt());
    let want = (reference.fee_ledger, reference.bad_debt);
    if got != want {
        return Err(format!(
            "(fee ledger, bad debt) {got:?} vs reference {want:?}"
        ));
    }
    if reference.money_accounted() != engine.money_accounted() {
        return Err(format!(
            "money accounted {} vs reference {}",
            engine.money_accounted(),
            reference.money_accounted()
        ));
    }
    for m in 0..engine.market_count() {
        let got = engine.fund_position(MarketId(m as u32)).ok_or("market")?;
        if got != reference.fund[m] {
            return Err(format!(
                "market {m}: fund position {got:?} vs reference {:?}",
                reference.fund[m]
            ));
        }
    }
    for a in 0..gen::CONFIG.max_accounts {
        let risk = engine.account_risk(AccountId(a)).ok_or("account")?;
        if risk.collateral != reference.collateral_of(a) {
            return Err(format!(
                "account {a}: collateral {} vs {}",
                risk.collateral,
                reference.collateral_of(a)
            ));
        }
        for m in 0..engine.market_count() {
            let p = engine
                .position(AccountId(a), MarketId(m as u32))
                .ok_or("position")?;
            let r = reference.pos[a as usize][m];
            if (p.size, p.cost, p.bucket) != (r.size, r.cost, reference.bucket_of(a, m)) {
                return Err(format!("account {a} market {m}: {p:?} vs reference {r:?}"));
            }
        }
    }
    Ok(())
}

fn run(
    cmds: &[Command],
    ring: u32,
    checked: bool,
    liquidating: &[u32],
) -> Result<(HashSink, usize), String> {
    run_with(config(ring), cmds, checked, liquidating)
}

fn run_with(
    cfg: EngineConfig,
    cmds: &[Command],
    checked: bool,
    liquidating: &[u32],
) -> Result<(HashSink, usize), String> {
    let mut engine = Engine::new(cfg);
    let mut reference = RefEngine::new(cfg);
    let (mut hash, mut net, mut liquidations) = (HashSink::default(), 0i128, 0);
    let mut halted = vec![false; gen::CONFIG.max_markets as usize];
    let mut events = Vec::new();
    for cmd in cmds {
        events.clear();
        engine.apply(cmd, &mut events);
        for e in &events {
            match e.kind {
                EventKind::MarketHalted(m) => halted[m.0 as usize] = true,
                EventKind::MarketResumed(m) => halted[m.0 as usize] = false,
                _ => {}
            }
        }
        net += cascade_tests::harness::net_inflow(cmd, &events);
        liquidations += events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::LiquidationStarted { .. }))
            .count();
        for e in &events {
            cascade_core::EventSink::emit(&mut hash, *e);
        }
        if checked {
            let want = reference.apply(cmd);
            if events != want {
                let at = events
                    .iter()
                    .zip(&want)
                    .position(|(x, y)| x != y)
                    .unwrap_or(events.len().min(want.len()));
                return Err(format!(
                    "command {}: events differ from the reference at index {at}:\n engine    {:?}\n reference {:?}\nALL engine {events:?}\nALL reference {want:?}",
                    cmd.seq,
                    events.get(at),
                    want.get(at)
                ));
            }
            check(&engine, net, liquidating, &halted)
                .and_then(|()| ledgers_agree(&engine, &reference))
                .map_err(|e| format!("after command {}: {e}", cmd.seq))?;
        }
    }
    Ok((hash, liquidations))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("CASCADE_LIQ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
    ))]

    #[test]
    fn invariants_hold_after_every_command(cmds in gen::arb_liquidation_stream(120, false)) {
        let (reference, _) = run(&cmds, 64, true, &[1, 2]).map_err(TestCaseError::fail)?;
        for ring in [1, 2, 65_536] {
            let (h, _) = run(&cmds, ring, false, &[1, 2]).map_err(TestCaseError::fail)?;
            prop_assert_eq!(h, reference, "ring capacity {} changed the event log", ring);
        }
    }

    /// Funding-heavy streams on a band reaching down to 1: funding alone pushes pools
    /// below MM and IM, the indexes follow it through their query points (and rebase),
    /// and every pool below a requirement is still found (the brute-force checks).
    #[test]
    fn funding_drift_keeps_every_pool_found(cmds in gen::arb_funding_stream(120)) {
        run(&cmds, 64, true, &[1, 2]).map_err(TestCaseError::fail)?;
    }

    /// Market 2 leveraged without liquidation: cross pools mixing it with market 1 are
    /// never keyed as if alone, and only market 1 positions are liquidated.
    #[test]
    fn mixed_markets_agree_with_the_reference(cmds in gen::arb_liquidation_stream(120, true)) {
        run(&cmds, 64, true, &[1]).map_err(TestCaseError::fail)?;
    }

    /// Five position slots for the streams' four accounts × two leveraged markets:
    /// liquidation, backstop and ADL only move positions between holders, so cascades
    /// never need a slot; orders and settings that would are refused as the reference
    /// refuses them.
    #[test]
    fn tight_position_capacity_agrees_with_the_reference(
        cmds in gen::arb_liquidation_stream(120, false)
    ) {
        let cfg = EngineConfig { max_positions: 5, ..config(64) };
        run_with(cfg, &cmds, true, &[1, 2]).map_err(TestCaseError::fail)?;
    }
}

/// The generator does reach liquidations, backstops and ADL (else the property is vacuous).
#[test]
fn streams_reach_every_stage_of_the_waterfall() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut started, mut backstops, mut adl, mut margin) = (0, 0, 0, 0);
    let (mut unwinds, mut fund_adl, mut bad_debt, mut fired, mut stop_cancels) = (0, 0, 0, 0, 0);
    let mut trims = 0;
    for _ in 0..300 {
        let cmds = gen::arb_liquidation_stream(120, false)
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        let mut engine = Engine::new(config(64));
        let mut events = Vec::new();
        for cmd in &cmds {
            engine.apply(cmd, &mut events);
        }
        for e in &events {
            match e.kind {
                EventKind::LiquidationStarted { .. } => started += 1,
                EventKind::Backstop { .. } => backstops += 1,
                EventKind::AdlFill { account, .. } => {
                    adl += 1;
                    fund_adl += i32::from(account == AccountId::FUND);
                }
                EventKind::Cancelled {
                    reason: cascade_core::CancelReason::Margin,
                    ..
                } => margin += 1,
                EventKind::FundOrder { .. } => unwinds += 1,
                EventKind::BadDebt { .. } => bad_debt += 1,
                EventKind::ConditionalTriggered { .. } => fired += 1,
                EventKind::Cancelled {
                    reason: cascade_core::CancelReason::ReduceOnly,
                    ..
                } => trims += 1,
                EventKind::ConditionalCancelled {
                    reason: cascade_core::CancelReason::Liquidation,
                    ..
                } => stop_cancels += 1,
                _ => {}
            }
        }
    }
    println!(
        "liquidations {started}, backstops {backstops}, ADL fills {adl}, margin cancels {margin}, \
         fund orders {unwinds}, fund ADL {fund_adl}, bad debts {bad_debt}, conditionals fired \
         {fired}, conditionals cancelled by liquidation {stop_cancels}, reduce-only trims \
         {trims} over 300 streams"
    );
    assert!(
        started > 50 && backstops > 0 && adl > 0 && margin > 0,
        "{started} {backstops} {adl} {margin}"
    );
    assert!(
        unwinds > 0 && fired > 0 && stop_cancels > 0 && trims > 0,
        "{unwinds} {fired} {stop_cancels} {trims}"
    );
}
