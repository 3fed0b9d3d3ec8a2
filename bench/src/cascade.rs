//! The cascade simulator: a generated population of leveraged accounts on one BTC-like
//! perpetual, market makers' bid and ask ladders, and a mark path (a synthetic crash in
//! steps, or a recorded one) applied through the real engine.
//!
//! Units: one price unit is $0.1 (tick 1) and one lot is one contract, so a notional in
//! atoms is price units × lots. The market spans $50,000..$200,000.

use crate::rng::Rng;
use cascade_core::risk::{bps, tier_table};
use cascade_core::{
    AccountId, AdlMode, ClientOrderId, Command, CommandKind, ConditionalKind, ConditionalOrder,
    EngineConfig, Event, EventKind, EventSink, LiquidationConfig, MarketConfig, MarketId, NewOrder,
    OrderType, Price, Qty, Rate, RiskConfig, Side, StpMode,
};
use std::path::Path;

/// The simulated market.
pub const MARKET: MarketId = MarketId(0);

/// Accounts `0..MAKERS` are market makers; the rest are traders.
pub const MAKERS: u32 = 8;

/// The population and market parameters of one simulation.
#[derive(Clone, Copy, Debug)]
pub struct Population {
    /// Number of accounts, market makers included.
    pub accounts: u32,
    /// Seed of the population.
    pub seed: u64,
    /// Starting mark (price units of $0.1).
    pub start: i64,
    /// Auto-deleveraging mode.
    pub adl: AdlMode,
    /// Insurance fund seed, in bps of the traders' open interest notional.
    pub fund_bps: i64,
    /// Resting bid liquidity of the makers, in percent of the traders' open interest.
    pub depth_percent: i64,
    /// Largest mark move one update may make, in bps (recorded paths gap).
    pub max_move_bps: u32,
    /// Haircut on the insurance fund's position when its capacity is judged, in bps.
    pub fund_haircut_bps: i64,
    /// Share of the visible depth within the band the fund's unwind order takes, in bps.
    pub unwind_bps: i64,
    /// Share of traders (percent) holding a reduce-only stop-loss on their whole position,
    /// halfway from the entry to the price where their margin would be gone.
    pub stops_pct: i64,
    /// Maintenance tier rates in percent of the defaults (100: 0.5% / 1% / 2% / 3%).
    pub mm_pct: i64,
    /// Liquidation fee, bps of the liquidated notional.
    pub liq_fee_bps: i64,
    /// Liquidation buffer: how far above maintenance a partial liquidation restores the
    /// pool, bps of maintenance margin.
    pub buffer_bps: i64,
    /// Volatility scaling slope `k` (margin × (1 + k × EWMA |return|), capped at 1.5).
    pub vol_k: i64,
    /// The leverages traders draw from, uniformly (each below `max_leverage`).
    pub leverages: &'static [i64],
    /// The market's maximum leverage.
    pub max_leverage: u32,
}

/// The default leverage draw: skewed low, median 4×.
pub const LEVERAGE_DEFAULT: [i64; 10] = [1, 2, 2, 3, 3, 5, 5, 10, 20, 24];

/// The risk report's draw: clustered at 5×, 10×, 20× and 50× (needs `max_leverage` 50 and
/// maintenance rates under 2%).
pub const LEVERAGE_CLUSTERED: [i64; 4] = [5, 10, 20, 50];

impl Population {
    /// `accounts` accounts around a $121,662 start (the 2025-10-10 open), queue ADL.
    pub fn new(accounts: u32) -> Population {
        Population {
            accounts: accounts.max(MAKERS + 2),
            seed: 7,
            start: 1_216_620,
            adl: AdlMode::Queue,
            fund_bps: 10,
            depth_percent: 40,
            max_move_bps: 2_000,
            fund_haircut_bps: 1_000,
            unwind_bps: 2_500,
            stops_pct: 0,
            mm_pct: 100,
            liq_fee_bps: 50,
            buffer_bps: 2_500,
            vol_k: 10,
            leverages: &LEVERAGE_DEFAULT,
            max_leverage: 25,
        }
    }

    /// Engine capacities: the accounts, one market, room for the ladders.
    pub fn engine_config(&self) -> EngineConfig {
        // One conditional slot per account when traders hold stop-losses.
        let stops = if self.stops_pct > 0 { self.accounts } else { 0 };
        EngineConfig {
            max_orders: 1 << 12,
            max_accounts: self.accounts,
            max_markets: 1,
            max_positions: self.accounts,
            max_conditionals: stops,
            liquidation_ring: 1_024,
            max_orders_per_account: 1 << 12,
            hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
        }
    }

    /// The market: maintenance tiers 0.5% / 1% / 2% / 3% at 10^8 / 10^9 / 10^10 /
    /// 10^15 atoms, 25× maximum leverage, maker 0.02%, taker 0.05%, mild volatility
    /// scaling (cap 1.5), liquidation buffer 25%, band 0.5%, fee 0.5%, positions under
    /// 10 lots' notional closed whole; the fund's haircut and unwind share as configured
    /// (10% and 25% by default).
    pub fn market(&self) -> MarketConfig {
        let mm = |b: i64| bps(b * self.mm_pct / 100);
        let (tiers, tier_count) = tier_table(&[
            (100_000_000, mm(50)),
            (1_000_000_000, mm(100)),
            (10_000_000_000, mm(200)),
            (1_000_000_000_000_000, mm(300)),
        ]);
        MarketConfig {
            tick: 1,
            lot_base_atoms: 1,
            min_price: Price(500_000),
            max_price: Price(2_000_000),
            max_qty: Qty(1 << 40),
            market_band_bps: 1_000,
            risk: Some(RiskConfig {
                max_leverage: self.max_leverage,
                tiers,
                tier_count,
                maker_fee: bps(2),
                taker_fee: bps(5),
                vol_lambda: bps(1_000),
                vol_k: Rate::from_num(self.vol_k),
                vol_floor: Rate::ONE,
                vol_cap: bps(15_000),
                oi_cap: 1 << 39,
                account_oi_share_bps: 10_000,
                max_mark_move_bps: self.max_move_bps,
                liquidation: Some(LiquidationConfig {
                    buffer: bps(self.buffer_bps),
                    min_notional: 10 * self.start,
                    band_bps: 50,
                    fee_rate: bps(self.liq_fee_bps),
                    adl: self.adl,
                    order_margin: true,
                    fund_haircut: bps(self.fund_haircut_bps),
                    unwind_rate: bps(self.unwind_bps),
                    isolated_fund: false,
                }),
            }),
        }
    }

    /// The commands that build the population: traders in long/short pairs trading at
    /// the start price with leverage drawn from 1× to 24× (skewed low) and deposits of
    /// 0.2 to 20 lots' notional; then the makers' ladders (bids every 0.5% down to
    /// −35%, asks every 0.5% up to +10%) and the insurance fund.
    pub fn setup(&self) -> Vec<CommandKind> {
        let mut rng = Rng::new(self.seed);
        let p0 = self.start;
        let mut out = vec![
            CommandKind::AddMarket(Box::new(self.market())),
            CommandKind::MarkPrice {
                market: MARKET,
                price: Price(p0),
            },
        ];
        out.extend((0..self.accounts).map(|a| CommandKind::OpenAccount(AccountId(a))));
        let deposit = |account: u32, amount: i64| CommandKind::Deposit {
            account: AccountId(account),
            amount,
        };
        let mut open_interest: i64 = 0;
        let mut a = MAKERS;
        while a + 1 < self.accounts {
            let (long, short) = if rng.chance(50) {
                (a, a + 1)
            } else {
                (a + 1, a)
            };
            let money = p0 * rng.range(20, 2_000) / 100;
            let draw = self.leverages.len() as u64;
            let lev = self.leverages[rng.below(draw) as usize];
            let size = (money * lev / p0).max(1);
            let short_lev = self.leverages[rng.below(draw) as usize];
            // Deposits: the target leverage, plus the fee reserve and a rounding margin.
            let need = |lev: i64| size * p0 / lev + size * p0 / 1_000 + 10 * size;
            out.push(deposit(long, need(lev)));
            out.push(deposit(short, need(short_lev)));
            out.extend(open_pair(MARKET, (long, short), p0, size));
            open_interest += size;
            // Drawn only when asked for, so the default population stays the same.
            if self.stops_pct > 0 {
                for (account, side, l) in [(long, Side::Sell, lev), (short, Side::Buy, short_lev)] {
                    if rng.below(100) < self.stops_pct as u64 {
                        out.push(stop_loss(account, side, p0, l, size));
                    }
                }
            }
            a += 2;
        }
        let oi_notional = i128::from(open_interest) * i128::from(p0);
        let bid_levels = 70;
        let per_level =
            (open_interest * self.depth_percent / 100 / bid_levels / i64::from(MAKERS)).max(1);
        // Makers hold their whole ladder's notional: leverage ≤ 1 if every bid fills.
        let maker_money = per_level * bid_levels * p0;
        for m in 0..MAKERS {
            out.push(deposit(m, maker_money));
            for k in 0..bid_levels {
                let price = p0 - p0 * (k + 1) * 5 / 1_000;
                out.push(CommandKind::NewOrder(NewOrder {
                    client_id: ClientOrderId(1 + k as u64),
                    ..new_order(m, Side::Buy, price, per_level)
                }));
            }
            for k in 0..20 {
                let price = p0 + p0 * (k + 1) * 5 / 1_000;
                out.push(CommandKind::NewOrder(NewOrder {
                    client_id: ClientOrderId(1_000 + k as u64),
                    ..new_order(m, Side::Sell, price, per_level)
                }));
            }
        }
        let fund = (oi_notional * i128::from(self.fund_bps) / 10_000) as i64;
        if fund > 0 {
            out.push(CommandKind::InsuranceDeposit {
                market: None,
                amount: fund,
            });
        }
        out
    }
}

/// A reduce-only stop-market closing `size` lots, halfway from the entry `p0` to where
/// a position at leverage `lev` would have lost its margin: `p0 ∓ p0 / (2 × lev)`.
fn stop_loss(account: u32, close: Side, p0: i64, lev: i64, size: i64) -> CommandKind {
    let gap = p0 / (2 * lev);
    let trigger = if close == Side::Sell {
        p0 - gap
    } else {
        p0 + gap
    };
    CommandKind::NewConditional(ConditionalOrder {
        account: AccountId(account),
        market: MARKET,
        client_id: ClientOrderId(1),
        side: close,
        qty: Qty(size),
        trigger: Price(trigger),
        kind: ConditionalKind::Stop,
        limit: None,
        reduce_only: true,
        stp: StpMode::CancelResting,
    })
}

/// `short` rests a sell of `size` lots at `p0` in `m` and `long` takes it with an IOC buy:
/// a new long/short pair.
pub fn open_pair(m: MarketId, (long, short): (u32, u32), p0: i64, size: i64) -> [CommandKind; 2] {
    [
        CommandKind::NewOrder(new_order_in(m, short, Side::Sell, p0, size)),
        CommandKind::NewOrder(NewOrder {
            order_type: OrderType::Ioc(Price(p0)),
            ..new_order_in(m, long, Side::Buy, p0, size)
        }),
    ]
}

fn new_order(account: u32, side: Side, price: i64, qty: i64) -> NewOrder {
    new_order_in(MARKET, account, side, price, qty)
}

/// A GTC limit order of `account` in market `m`, client id 0, cancel-resting STP.
pub fn new_order_in(m: MarketId, account: u32, side: Side, price: i64, qty: i64) -> NewOrder {
    NewOrder {
        account: AccountId(account),
        market: m,
        client_id: ClientOrderId(0),
        side,
        order_type: OrderType::Limit(Price(price)),
        qty: Qty(qty),
        stp: StpMode::CancelResting,
        reduce_only: false,
    }
}

/// A crash of `percent`% from `start` in `steps` equal steps (rounded down to a tick).
pub fn crash_path(start: i64, percent: i64, steps: i64) -> Vec<i64> {
    (1..=steps)
        .map(|k| start - start * percent * k / (100 * steps))
        .collect()
}

/// A recorded mark path from a Binance kline CSV (`open_time,open,high,low,close,...`):
/// per minute, the low then the close, in $0.1 units (rounded to nearest).
pub fn load_mark_path(path: &Path) -> Result<Vec<i64>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split(',').collect();
        if n == 0 && cols.first().is_some_and(|c| c.parse::<f64>().is_err()) {
            continue; // header
        }
        let field = |i: usize| -> Result<i64, String> {
            let s = cols
                .get(i)
                .ok_or_else(|| format!("{}:{}: too few columns", path.display(), n + 1))?;
            parse_tenths(s).ok_or_else(|| format!("{}:{}: bad price {s:?}", path.display(), n + 1))
        };
        out.push(field(3)?);
        out.push(field(4)?);
    }
    if out.is_empty() {
        return Err(format!("{}: no rows", path.display()));
    }
    Ok(out)
}

/// A decimal price in $0.1 units, rounded half up, without floats.
fn parse_tenths(s: &str) -> Option<i64> {
    let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let whole: i64 = int.parse().ok()?;
    let digits: Vec<u32> = frac
        .chars()
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()?;
    let tenth = i64::from(digits.first().copied().unwrap_or(0));
    let up = i64::from(digits.get(1).is_some_and(|&d| d >= 5));
    Some(whole * 10 + tenth + up)
}

/// Counts the liquidation events of a run, without allocating.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events seen.
    pub events: u64,
    /// Pools liquidated (`LiquidationStarted`).
    pub liquidations: u64,
    /// Liquidation fills against the book.
    pub liquidation_fills: u64,
    /// Backstops by the insurance fund.
    pub backstops: u64,
    /// Auto-deleveraging fills.
    pub adl_fills: u64,
    /// Lots closed by auto-deleveraging (the fund's own deleveraging included).
    pub adl_lots: i64,
    /// Rejected commands.
    pub rejects: u64,
    /// Lowest insurance fund cash seen.
    pub fund_low: Option<i128>,
    /// Lowest insurance fund equity reported by an `InsuranceFund` event.
    pub equity_low: Option<i128>,
    /// Lots traded by the fund's unwind orders.
    pub unwound_lots: i64,
    /// Bad debt written off (socialised or outstanding).
    pub bad_debt: i128,
    /// Conditional orders that fired.
    pub stops_triggered: u64,
    /// Lots traded by orders that conditional orders became (as takers).
    pub stop_lots: i64,
    /// A conditional just fired: the next `Accepted` is the order it became.
    pub stop_pending: bool,
    /// The order the last fired conditional became.
    pub stop_order: Option<cascade_core::OrderId>,
}

impl EventSink for Tally {
    fn emit(&mut self, e: Event) {
        self.events += 1;
        match e.kind {
            EventKind::LiquidationStarted { .. } => self.liquidations += 1,
            EventKind::Fill {
                liquidation: true,
                taker_account,
                qty,
                ..
            } => {
                if taker_account == AccountId::FUND {
                    self.unwound_lots += qty.0;
                } else {
                    self.liquidation_fills += 1;
                }
            }
            EventKind::Backstop { .. } => self.backstops += 1,
            EventKind::AdlFill { qty, .. } => {
                self.adl_fills += 1;
                self.adl_lots += qty.0;
            }
            EventKind::Rejected(_) => self.rejects += 1,
            EventKind::InsuranceFund {
                balance, equity, ..
            } => {
                self.fund_low = Some(self.fund_low.map_or(balance, |l| l.min(balance)));
                self.equity_low = Some(self.equity_low.map_or(equity, |l| l.min(equity)));
            }
            EventKind::BadDebt { amount, .. } => self.bad_debt += amount,
            EventKind::ConditionalTriggered { .. } => {
                self.stops_triggered += 1;
                self.stop_pending = true;
            }
            EventKind::Accepted { order_id, .. } if self.stop_pending => {
                self.stop_pending = false;
                self.stop_order = Some(order_id);
            }
            EventKind::Fill {
                taker_order, qty, ..
            } if Some(taker_order) == self.stop_order => self.stop_lots += qty.0,
            _ => {}
        }
    }
}

/// A fresh engine holding the population (every set-up command applied and accepted).
pub fn build(pop: &Population) -> Result<cascade_core::Engine, String> {
    let mut engine = cascade_core::Engine::try_new(pop.engine_config())
        .map_err(|e| format!("engine config: {e:?}"))?;
    let mut tally = Tally::default();
    for c in sequence(pop.setup(), 1) {
        engine.apply(&c, &mut tally);
    }
    if tally.rejects > 0 {
        return Err(format!("{} set-up commands were rejected", tally.rejects));
    }
    Ok(engine)
}

/// Sequences command bodies from `first`.
pub fn sequence(kinds: Vec<CommandKind>, first: u64) -> Vec<Command> {
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Command {
            seq: first + i as u64,
            ts_ns: 0,
            kind,
        })
        .collect()
}

/// The mark updates of a path, sequenced from `first`.
pub fn mark_commands(path: &[i64], first: u64) -> Vec<Command> {
    sequence(
        path.iter()
            .map(|&p| CommandKind::MarkPrice {
                market: MARKET,
                price: Price(p),
            })
            .collect(),
        first,
    )
}
