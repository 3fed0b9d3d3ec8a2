//! `cascade-bench scale`: engine memory and per-command cost against the number of
//! accounts, each holding 3 positions over 1,000 liquidating markets.
//!
//! Method: for each power of ten from 10^3 to `--max-accounts` (default 10^7), a fresh
//! engine with `max_positions` = 3 × accounts + 4,096 and 1,000 leveraged markets (band
//! 9,000..=11,000, tick 1, maintenance 4%, 20× leverage, liquidation on, mark 10,000) is
//! built; accounts are paired and
//! each pair trades one lot in three markets (`(3i + k) mod 1,000`), so every account
//! holds three cross positions and every market 3 × accounts / 1,000 holders. Memory is
//! the heap the engine holds (the counting allocator's live bytes after building it less
//! before: capacities reserved up front, touched or not) and the process's resident set.
//! Then, on one thread, timed with `Instant` over the whole loop: the mixed workload
//! (`--commands`, default 200,000, cycles of: a resting buy by a random account in one of
//! its markets (margin-checked), its cancel, a deposit, and its partner selling one lot
//! into the partner's resting buy); 1,024 `FundingRate` commands of ±1 bp on market 0
//! (timed one by one: mean and slowest; the slowest is a rebase of the trigger indexes,
//! which re-keys the market's holders, after ~420 payments of one sign here); 256 quiet
//! `MarkPrice` commands on market 0 alternating 10,000 / 10,001 (no pool falls below
//! maintenance). Then one cascading `MarkPrice`: market 0 falls 10%, liquidating the
//! buyers of the pairs numbered by a multiple of ten that hold it (they deposited just
//! their initial margin, 1,600 atoms; everyone else 2^40, and the mixed workload leaves
//! those pairs alone). Events go to a counting sink.

use crate::{bytes_live, Args};
use cascade_bench::rng::Rng;
use cascade_core::risk::{bps, tier_table, Rate, RiskConfig};
use cascade_core::{
    AccountId, AdlMode, ClientOrderId, Command, CommandKind, Engine, EngineConfig, Event,
    EventSink, LiquidationConfig, MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty,
    Side, StpMode,
};
use std::time::Instant;

const MARKETS: u32 = 1_000;
const MARK: i64 = 10_000;

/// `FundingRate` commands timed per row (1 bp each, alternating sign).
const FUNDINGS: u32 = 1_024;

/// A thin account's deposit: the initial margin of its three 1-lot positions at 20×
/// (3 × 500) plus the fee reserve, and a little.
const THIN: i64 = 1_600;

/// Counts events, liquidations, and keeps the last accepted order id.
#[derive(Default)]
struct Count {
    events: u64,
    liquidations: u64,
    accepted: Option<OrderId>,
}

impl EventSink for Count {
    fn emit(&mut self, e: Event) {
        self.events += 1;
        match e.kind {
            cascade_core::EventKind::Accepted { order_id, .. } => self.accepted = Some(order_id),
            cascade_core::EventKind::LiquidationStarted { .. } => self.liquidations += 1,
            _ => {}
        }
    }
}

fn market() -> MarketConfig {
    let (tiers, tier_count) = tier_table(&[(1 << 40, bps(400))]);
    MarketConfig {
        tick: 1,
        lot_base_atoms: 1,
        min_price: Price(9_000),
        max_price: Price(11_000),
        max_qty: Qty(1_000),
        market_band_bps: 500,
        risk: Some(RiskConfig {
            max_leverage: 20,
            tiers,
            tier_count,
            maker_fee: Rate::ZERO,
            taker_fee: Rate::ZERO,
            vol_lambda: bps(2_500),
            vol_k: bps(40_000),
            vol_floor: Rate::ONE,
            vol_cap: Rate::from_num(3),
            oi_cap: 1 << 40,
            account_oi_share_bps: 10_000,
            max_mark_move_bps: 2_000,
            liquidation: Some(LiquidationConfig {
                buffer: bps(1_000),
                min_notional: 100,
                band_bps: 200,
                fee_rate: bps(50),
                adl: AdlMode::Queue,
                order_margin: true,
                fund_haircut: bps(1_000),
                unwind_rate: bps(5_000),
                isolated_fund: false,
            }),
        }),
    }
}

struct Bench {
    engine: Engine,
    seq: u64,
    sink: Count,
    client: u64,
}

impl Bench {
    fn new(engine: Engine) -> Bench {
        Bench {
            engine,
            seq: 0,
            sink: Count::default(),
            client: 0,
        }
    }

    fn apply(&mut self, kind: CommandKind) {
        self.seq += 1;
        let cmd = Command {
            seq: self.seq,
            ts_ns: 0,
            kind,
        };
        self.engine.apply(&cmd, &mut self.sink);
    }

    fn order(&mut self, a: u32, m: u32, side: Side, t: OrderType) {
        self.client += 1;
        self.apply(CommandKind::NewOrder(NewOrder {
            account: AccountId(a),
            market: MarketId(m),
            client_id: ClientOrderId(self.client),
            side,
            order_type: t,
            qty: Qty(1),
            stp: StpMode::CancelResting,
            reduce_only: false,
        }));
    }
}

/// ns per `FundingRate` (mean of [`FUNDINGS`], ±1 bp) in one market where two accounts
/// hold a position, in an engine with `accounts` account slots: the measure of
/// the old scan over every account slot (145 ms at 10^7 then).
fn funding_two_holders(accounts: u32) -> Result<f64, String> {
    let engine = Engine::try_new(EngineConfig {
        max_accounts: accounts,
        max_markets: 1,
        max_positions: 4_096,
        ..EngineConfig::default()
    })
    .map_err(|e| format!("{e:?}"))?;
    let mut b = Bench::new(engine);
    b.apply(CommandKind::AddMarket(Box::new(market())));
    b.apply(CommandKind::MarkPrice {
        market: MarketId(0),
        price: Price(MARK),
    });
    for a in 0..2 {
        b.apply(CommandKind::OpenAccount(AccountId(a)));
        b.apply(CommandKind::Deposit {
            account: AccountId(a),
            amount: 1 << 40,
        });
    }
    b.order(0, 0, Side::Sell, OrderType::Limit(Price(MARK)));
    b.order(1, 0, Side::Buy, OrderType::Ioc(Price(MARK)));
    let start = Instant::now();
    for k in 0..FUNDINGS {
        let rate = if k % 2 == 0 { bps(1) } else { -bps(1) };
        b.apply(CommandKind::FundingRate {
            market: MarketId(0),
            rate,
        });
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(FUNDINGS);
    b.engine.verify_sampled()?;
    Ok(ns)
}

/// One row: engine and resident bytes, ns per mixed command, per FundingRate, per quiet
/// MarkPrice, positions held, and the cascading MarkPrice (ns, pools liquidated).
pub(crate) fn row(accounts: u32, commands: usize) -> Result<Row, String> {
    let before = bytes_live();
    let engine = Engine::try_new(EngineConfig {
        max_orders: 1 << 16,
        max_accounts: accounts,
        max_markets: MARKETS,
        max_positions: 3 * accounts + 4_096,
        max_conditionals: 1 << 12,
        liquidation_ring: 1_024,
        max_orders_per_account: 1 << 10,
        hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
    })
    .map_err(|e| format!("{e:?}"))?;
    let mut b = Bench::new(engine);
    let cfg = Box::new(market());
    for m in 0..MARKETS {
        b.apply(CommandKind::AddMarket(cfg.clone()));
        b.apply(CommandKind::MarkPrice {
            market: MarketId(m),
            price: Price(MARK),
        });
    }
    for a in 0..accounts {
        b.apply(CommandKind::OpenAccount(AccountId(a)));
        // The buyer of every tenth pair is thin: a 10% fall in one of its markets
        // liquidates it (equity 1,600 − 1,000 against MM 3 × 400 × ~1).
        let thin = a % 2 == 1 && (a / 2) % 10 == 0;
        b.apply(CommandKind::Deposit {
            account: AccountId(a),
            amount: if thin { THIN } else { 1 << 40 },
        });
    }
    for i in 0..accounts / 2 {
        for k in 0..3 {
            let m = (3 * i + k) % MARKETS;
            b.order(2 * i, m, Side::Sell, OrderType::Limit(Price(MARK)));
            b.order(2 * i + 1, m, Side::Buy, OrderType::Limit(Price(MARK)));
        }
    }
    let held = b.engine.positions_held();
    let engine_bytes = bytes_live().saturating_sub(before);
    let rss = resident_bytes();

    let mut rng = Rng::new(7);
    let start = Instant::now();
    let mut n = 0usize;
    while n < commands {
        let i = (rng.next_u64() % u64::from(accounts / 2)) as u32;
        if i % 10 == 0 {
            continue; // the thin pairs are left for the cascade
        }
        let m = (3 * i + (rng.next_u64() % 3) as u32) % MARKETS;
        let (a, partner) = (2 * i + 1, 2 * i);
        b.order(a, m, Side::Buy, OrderType::Limit(Price(MARK - 10)));
        let id = b.sink.accepted.ok_or("order refused")?;
        b.apply(CommandKind::Cancel {
            account: AccountId(a),
            order_id: id,
        });
        b.apply(CommandKind::Deposit {
            account: AccountId(a),
            amount: 1,
        });
        b.order(a, m, Side::Buy, OrderType::Limit(Price(MARK)));
        b.order(partner, m, Side::Sell, OrderType::Ioc(Price(MARK)));
        n += 5;
    }
    let mixed = start.elapsed().as_nanos() as f64 / n as f64;

    // Enough payments to pass the index's reach (a quarter of the band: 500 atoms here)
    // once on each side, so the mean includes the rebases (each re-keys the market's
    // holders); the slowest one is reported too.
    let (mut total, mut funding_max) = (0u128, 0u128);
    for k in 0..FUNDINGS {
        let rate = if k % 2 == 0 { bps(1) } else { -bps(1) };
        let start = Instant::now();
        b.apply(CommandKind::FundingRate {
            market: MarketId(0),
            rate,
        });
        let ns = start.elapsed().as_nanos();
        total += ns;
        funding_max = funding_max.max(ns);
    }
    let funding = total as f64 / f64::from(FUNDINGS);
    let funding_max = funding_max as f64;
    let funding_two = funding_two_holders(accounts)?;

    let start = Instant::now();
    for k in 0..256 {
        b.apply(CommandKind::MarkPrice {
            market: MarketId(0),
            price: Price(MARK + (k % 2)),
        });
    }
    let mark = start.elapsed().as_nanos() as f64 / 256.0;

    // Back to 10,000 (the quiet loop ends at 10,001), then the fall.
    b.apply(CommandKind::MarkPrice {
        market: MarketId(0),
        price: Price(MARK),
    });
    let liquidations = b.sink.liquidations;
    let start = Instant::now();
    b.apply(CommandKind::MarkPrice {
        market: MarketId(0),
        price: Price(MARK * 9 / 10),
    });
    let cascade = start.elapsed().as_nanos() as f64;
    let liquidated = b.sink.liquidations - liquidations;
    b.engine.verify_sampled()?;
    Ok(Row {
        engine_bytes,
        rss,
        mixed,
        funding,
        funding_max,
        funding_two,
        mark,
        held,
        cascade,
        liquidated,
    })
}

/// One row of the table.
pub(crate) struct Row {
    /// Heap the engine holds.
    pub(crate) engine_bytes: usize,
    /// Resident set of the process.
    pub(crate) rss: u64,
    /// ns per command of the mixed workload.
    pub(crate) mixed: f64,
    /// ns per `FundingRate` (mean, rebases included).
    pub(crate) funding: f64,
    /// ns of the slowest `FundingRate` (a rebase).
    pub(crate) funding_max: f64,
    /// ns per `FundingRate` with two holders ([`funding_two_holders`]).
    pub(crate) funding_two: f64,
    /// ns per quiet `MarkPrice`.
    pub(crate) mark: f64,
    /// Positions held.
    pub(crate) held: u32,
    /// ns of the cascading `MarkPrice`.
    pub(crate) cascade: f64,
    /// Pools it liquidated.
    pub(crate) liquidated: u64,
}

/// VmRSS of this process in bytes (0 where `/proc` is missing).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

trait Sampled {
    fn verify_sampled(&self) -> Result<(), String>;
}

impl Sampled for Engine {
    /// `verify` walks every account × market: only affordable on the small rows.
    fn verify_sampled(&self) -> Result<(), String> {
        if self.config().max_accounts <= 10_000 {
            self.verify()
        } else {
            Ok(())
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = Args::parse(args, &["--max-accounts", "--commands"], &[])?;
    let max: u32 = args.value("--max-accounts")?.unwrap_or(10_000_000);
    let commands: usize = args.value("--commands")?.unwrap_or(200_000);
    println!(
        "| accounts | positions | engine memory (bytes) | resident (bytes) | ns/command (mixed) | ns FundingRate (mean) | ns FundingRate (max) | ns FundingRate (2 holders) | ns quiet MarkPrice | ns cascading MarkPrice | liquidated |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    let mut n = 1_000u32;
    while n <= max {
        let r = row(n, commands)?;
        println!(
            "| {n} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            r.held,
            r.engine_bytes,
            r.rss,
            r.mixed,
            r.funding,
            r.funding_max,
            r.funding_two,
            r.mark,
            r.cascade,
            r.liquidated
        );
        rows.push((n, r));
        n = match n.checked_mul(10) {
            Some(x) => x,
            None => break,
        };
    }
    let (first, last) = (
        rows.first().ok_or("no rows")?,
        rows.last().ok_or("no rows")?,
    );
    println!(
        "scale accounts_max={} positions={} engine_bytes={} resident_bytes={} bytes_per_account={} ns_mixed_min={:.0} ns_mixed_max={:.0} mixed_growth={:.2} ns_funding={:.0} ns_mark_quiet={:.0} ns_mark_cascade={:.0} cascade_liquidations={} ns_funding_first={:.0} ns_funding_max={:.0} ns_funding_two_first={:.0} ns_funding_two_last={:.0}",
        last.0,
        last.1.held,
        last.1.engine_bytes,
        last.1.rss,
        last.1.engine_bytes / last.0 as usize,
        first.1.mixed,
        last.1.mixed,
        last.1.mixed / first.1.mixed,
        last.1.funding,
        last.1.mark,
        last.1.cascade,
        last.1.liquidated,
        first.1.funding,
        last.1.funding_max,
        first.1.funding_two,
        last.1.funding_two
    );
    Ok(())
}
