//! Cascade scenarios on a generated population (cascade-bench's simulator): a 30% crash
//! in steps over 10,000 accounts, and the recorded 2025-10-10 BTCUSD_PERP mark path
//! (per minute the low, then the close)
//! (`../shared/data/crypto/prices/`, or `CASCADE_CRYPTO_DIR`). Every invariant is checked
//! after every mark step.

use cascade_bench::cascade::{self, Population, Tally, MAKERS, MARKET};
use cascade_core::{AccountId, Engine, EventKind, EventSink};
use std::path::Path;

struct Outcome {
    engine: Engine,
    tally: Tally,
    fund_path: Vec<i128>,
    liquidated: Vec<bool>,
}

/// Builds the population, then applies the path, checking every invariant after each
/// step; returns the final state and counts.
fn simulate(pop: &Population, path: &[i64]) -> Outcome {
    let mut engine = Engine::new(pop.engine_config());
    let setup = cascade::sequence(pop.setup(), 1);
    let mut net: i128 = 0;
    let mut tally = Tally::default();
    let mut events = Vec::new();
    for c in &setup {
        events.clear();
        engine.apply(c, &mut events);
        assert_eq!(
            cascade_core::rejection(&events),
            None,
            "set-up command {c:?}"
        );
        net += cascade_tests::harness::net_inflow(c, &events);
    }
    let (mut fund_path, mut liquidated) = (
        vec![engine.insurance_fund()],
        vec![false; pop.accounts as usize],
    );
    for c in cascade::mark_commands(path, setup.len() as u64 + 1) {
        events.clear();
        engine.apply(&c, &mut events);
        assert_eq!(cascade_core::rejection(&events), None, "mark {c:?}");
        for e in &events {
            tally.emit(*e);
            if let EventKind::LiquidationStarted { account, .. } = e.kind {
                liquidated[account.0 as usize] = true;
            }
        }
        check(&engine, pop, net);
        fund_path.push(engine.insurance_fund());
    }
    Outcome {
        engine,
        tally,
        fund_path,
        liquidated,
    }
}

fn check(engine: &Engine, pop: &Population, net: i128) {
    engine.verify().expect("structural invariants"); // incl. positions sum to zero, trigger index
    assert_eq!(engine.money_accounted(), net, "money conserved to the atom");
    assert!(engine.fee_ledger() >= 0, "fee ledger never negative");
    // Fund cash may be negative; its equity may not while an account still holds a
    // position opposite to the fund's (solvency would deleverage against it).
    let s = engine.fund_position(MARKET).map_or(0, |f| f.0);
    let opposed = s != 0
        && (0..pop.accounts).any(|a| {
            engine
                .position(AccountId(a), MARKET)
                .is_some_and(|p| p.size.signum() == -s.signum())
        });
    assert!(
        !opposed || engine.fund().equity >= 0,
        "fund insolvent with opposite holders: {:?}",
        engine.fund()
    );
    for a in (0..pop.accounts).map(AccountId) {
        let (equity, mm) = engine.pool_risk(a, None).expect("account");
        assert!(
            mm == 0 || equity >= mm,
            "account {} left below MM: {equity} < {mm}",
            a.0
        );
        assert!(equity >= 0, "account {} negative equity {equity}", a.0);
    }
}

#[test]
fn a_thirty_percent_crash_over_ten_thousand_accounts() {
    let pop = Population::new(10_000);
    let path = cascade::crash_path(pop.start, 30, 30);
    let out = simulate(&pop, &path);
    let t = out.tally;
    println!(
        "30% crash in 30 steps, {} accounts: {} liquidations, {} liquidation fills, {} backstops, {} ADL fills; insurance fund {:?}",
        pop.accounts, t.liquidations, t.liquidation_fills, t.backstops, t.adl_fills, out.fund_path
    );
    assert!(t.liquidations > 0 && t.liquidation_fills > 0);
    assert_eq!(t.rejects, 0);
    // Theory, independent of the engine: a long at leverage L loses 30·L % of its
    // deposit in a 30% fall, so every long at ≥ 4× (120%) must have been liquidated and
    // no long at ≤ 2× (60% lost, equity ≥ 40% of the deposit ≥ 20% of notional, far
    // above MM) or any short (they gain) may have been.
    let (mut high, mut low) = (0, 0);
    let fresh = {
        let mut e = Engine::new(pop.engine_config());
        let mut sink = Tally::default();
        for c in cascade::sequence(pop.setup(), 1) {
            e.apply(&c, &mut sink);
        }
        e
    };
    for a in MAKERS..pop.accounts {
        let p = fresh.position(AccountId(a), MARKET).expect("position");
        let deposit = fresh
            .account_risk(AccountId(a))
            .expect("account")
            .collateral;
        let notional = i128::from(p.size.abs()) * i128::from(pop.start);
        if p.size < 0 {
            assert!(
                !out.liquidated[a as usize],
                "short {a} liquidated in a crash"
            );
        } else if notional >= 4 * deposit {
            high += 1;
            assert!(
                out.liquidated[a as usize],
                "long {a} at ≥ 4× survived a 30% fall"
            );
        } else if notional <= 2 * deposit {
            low += 1;
            assert!(!out.liquidated[a as usize], "long {a} at ≤ 2× liquidated");
        }
    }
    assert!(
        high > 100 && low > 100,
        "population covers both ends: {high} high, {low} low"
    );
}

#[test]
fn the_2025_10_10_btcusd_perp_mark_path() {
    let dir = std::env::var_os("CASCADE_CRYPTO_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/crypto"),
        Into::into,
    );
    let file = Path::new(&dir).join("prices/BTCUSD_PERP-1m-2025-10-10.csv");
    if !file.exists() {
        assert!(
            std::env::var_os("CASCADE_REQUIRE_DATA").is_none(),
            "CASCADE_REQUIRE_DATA is set but {} is missing",
            file.display()
        );
        println!(
            "SKIPPED: {} not found (set CASCADE_CRYPTO_DIR)",
            file.display()
        );
        return;
    }
    let path = cascade::load_mark_path(&file).expect("kline file");
    let low = *path.iter().min().expect("rows");
    println!(
        "ran on {}: {} marks, low {}.{}",
        file.display(),
        path.len(),
        low / 10,
        low % 10
    );
    assert_eq!(low, 1_024_975, "the day's low is $102,497.48");
    // 2,000 accounts: the path has 2,880 marks and every invariant is checked by brute
    // force after each.
    let mut pop = Population::new(2_000);
    pop.start = path[0];
    let out = simulate(&pop, &path);
    let t = out.tally;
    println!(
        "2025-10-10 path, {} accounts: {} liquidations, {} liquidation fills, {} backstops, {} ADL fills; fund low {:?}, end {}",
        pop.accounts, t.liquidations, t.liquidation_fills, t.backstops, t.adl_fills, t.fund_low, out.engine.insurance_fund()
    );
    assert!(
        t.liquidations > 0,
        "a 16% intraday fall liquidates the 20×+ longs"
    );
    assert_eq!(t.rejects, 0);
}
