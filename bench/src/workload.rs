//! The seeded mixed workload used by `demo`, the throughput numbers and the allocation
//! test: by default about 56% limit adds within 50 ticks of the mid, 34% cancels of live
//! orders and 10% marketable orders (IOC and market), over many accounts, with the book
//! held near a target number of resting orders. The shares are configurable, replaces
//! of live orders included (none by default).
//!
//! With `margin` on, the market is leveraged: every account deposits collateral first,
//! every order is margin-checked, fills settle into positions with fees, and a mark price
//! follows the mid every 100 commands.
//!
//! Commands are generated against a live engine (so cancels name real order ids), then
//! replayed on a fresh engine: ids are assigned deterministically, so the replay sees the
//! same ids.

use crate::rng::Rng;
use cascade_core::risk::tier_table;
use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, EngineConfig, Event, EventKind,
    MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty, Rate, RiskConfig, Side,
    StpMode,
};

/// Workload shape.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// Generator seed.
    pub seed: u64,
    /// Commands after set-up.
    pub commands: usize,
    /// Trading accounts.
    pub accounts: u32,
    /// Resting orders the generator steers toward.
    pub target_orders: usize,
    /// Leveraged market with accounts, margin checks, fees and marks.
    pub margin: bool,
    /// Limit adds are placed 1..=`spread_ticks` from the mid (50: a narrow book).
    pub spread_ticks: i64,
    /// Start with `target_orders` resting orders placed in the (unmeasured) set-up.
    pub prefill: bool,
    /// Plain markets the orders are spread over uniformly (more than one: each spans
    /// 95,000..=105,000 so a thousand of them fit in memory; ignored with `margin`).
    pub markets: u32,
    /// Percent of commands that cancel a live order (the generator adds more when the
    /// book grows past its target).
    pub cancel_pct: u64,
    /// Percent that replace a live order: half shrink it (keeping priority), half move
    /// it to a new price near the touch (losing priority).
    pub replace_pct: u64,
    /// Percent that are marketable: IOC up to 20 ticks through the mid (80%) or market
    /// orders (20%).
    pub marketable_pct: u64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            seed: 42,
            commands: 2_000_000,
            accounts: 1_000,
            target_orders: 10_000,
            margin: false,
            spread_ticks: 50,
            prefill: false,
            markets: 1,
            cancel_pct: 34,
            replace_pct: 0,
            marketable_pct: 10,
        }
    }
}

/// The workload's market: tick 1 around a mid of 100,000, band ±50%.
pub const MARKET: MarketConfig = MarketConfig {
    tick: 1,
    lot_base_atoms: 1_000,
    min_price: Price(50_000),
    max_price: Price(150_000),
    max_qty: Qty(1_000),
    market_band_bps: 50,
    risk: None,
};

/// The leveraged variant's risk parameters: 20× max leverage; maintenance 0.5% / 1% /
/// 2% up to 10^9 / 10^10 / 10^11 atoms of notional; maker −1 bp, taker 5 bp; volatility
/// scale 1 + 10 × EWMA(λ = 5%) capped at 3; marks may move 10% at a time.
pub fn leveraged_market() -> MarketConfig {
    let rate = cascade_core::risk::bps;
    let (tiers, tier_count) = tier_table(&[
        (1_000_000_000, rate(50)),
        (10_000_000_000, rate(100)),
        (100_000_000_000, rate(200)),
    ]);
    MarketConfig {
        risk: Some(RiskConfig {
            max_leverage: 20,
            tiers,
            tier_count,
            maker_fee: rate(-1),
            taker_fee: rate(5),
            vol_lambda: rate(500),
            vol_k: Rate::from_bits(10 << 32),
            vol_floor: Rate::ONE,
            vol_cap: Rate::from_bits(3 << 32),
            oi_cap: 1_000_000_000,
            account_oi_share_bps: 10_000,
            max_mark_move_bps: 1_000,
            liquidation: Some(cascade_core::LiquidationConfig {
                buffer: rate(2_500),
                min_notional: 0,
                band_bps: 50,
                fee_rate: rate(50),
                adl: cascade_core::AdlMode::Queue,
                order_margin: false,
                fund_haircut: rate(1_000),
                unwind_rate: rate(2_500),
                isolated_fund: false,
            }),
        }),
        ..MARKET
    }
}

/// Collateral each account deposits in the leveraged variant.
pub const DEPOSIT: i64 = 10_000_000_000;

/// Engine capacities that fit the workload.
pub fn engine_config(mix: &Mix) -> EngineConfig {
    EngineConfig {
        max_orders: (mix.target_orders * 2 + 16_384) as u32,
        max_accounts: mix.accounts,
        max_markets: mix.markets.max(1),
        // Every (account, market) pair may hold state: the generated mix trades freely.
        max_positions: (u64::from(mix.accounts) * u64::from(mix.markets.max(1)))
            .min(cascade_core::engine::MAX_POSITION_SLOTS) as u32,
        max_conditionals: 0,
        liquidation_ring: 64,
        // Off: the generated mix spreads orders over accounts freely.
        max_orders_per_account: (mix.target_orders * 2 + 16_384) as u32,
        hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
    }
}

/// A generated command log: set-up commands first, then the mix.
pub struct Workload {
    /// Set-up (market and accounts).
    pub setup: Vec<Command>,
    /// The measured commands.
    pub commands: Vec<Command>,
}

/// Generates the workload.
pub fn generate(mix: &Mix) -> Workload {
    let mut rng = Rng::new(mix.seed);
    let mut engine = Engine::new(engine_config(mix));
    let mut events: Vec<Event> = Vec::new();
    let mut seq = 0u64;
    let mut next = |kind| {
        seq += 1;
        Command {
            seq,
            ts_ns: seq,
            kind,
        }
    };
    let market = if mix.margin {
        leveraged_market()
    } else {
        MARKET
    };
    let many = mix.markets > 1 && !mix.margin;
    let mut setup = if many {
        let narrow = MarketConfig {
            min_price: Price(95_000),
            max_price: Price(105_000),
            ..MARKET
        };
        (0..mix.markets)
            .map(|_| next(CommandKind::AddMarket(Box::new(narrow))))
            .collect()
    } else {
        vec![next(CommandKind::AddMarket(Box::new(market)))]
    };
    // Only draw a market when there is a choice, so the one-market workload is unchanged.
    let pick_market = |rng: &mut Rng| {
        if many {
            MarketId(rng.below(u64::from(mix.markets)) as u32)
        } else {
            MarketId(0)
        }
    };
    setup.extend((0..mix.accounts).map(|a| next(CommandKind::OpenAccount(AccountId(a)))));
    if mix.margin {
        setup.extend((0..mix.accounts).map(|a| {
            next(CommandKind::Deposit {
                account: AccountId(a),
                amount: DEPOSIT,
            })
        }));
        setup.push(next(CommandKind::MarkPrice {
            market: MarketId(0),
            price: Price(100_000),
        }));
    }
    let mut live: Vec<(OrderId, AccountId)> = Vec::with_capacity(mix.target_orders * 2);
    let mut mid = 100_000i64;
    let mut client = 0u64;
    let limit_order = |rng: &mut Rng, client: &mut u64, mid: i64| {
        let side = if rng.chance(50) {
            Side::Buy
        } else {
            Side::Sell
        };
        let sign = if side == Side::Buy { -1 } else { 1 };
        *client += 1;
        NewOrder {
            account: AccountId(rng.below(u64::from(mix.accounts)) as u32),
            market: pick_market(rng),
            client_id: ClientOrderId(*client),
            side,
            order_type: OrderType::Limit(Price(mid + sign * rng.range(1, mix.spread_ticks))),
            qty: Qty(rng.range(1, 100)),
            stp: StpMode::CancelResting,
            reduce_only: false,
        }
    };
    if mix.prefill {
        for _ in 0..mix.target_orders {
            let o = limit_order(&mut rng, &mut client, mid);
            setup.push(next(CommandKind::NewOrder(o)));
        }
    }
    for c in &setup {
        events.clear();
        engine.apply(c, &mut events);
        if let Some(EventKind::Accepted {
            order_id, account, ..
        }) = events.first().map(|e| e.kind)
        {
            live.push((order_id, account));
        }
    }
    let mut commands = Vec::with_capacity(mix.commands);
    while commands.len() < mix.commands {
        if rng.chance(1) {
            let (lo, hi) = if many {
                (96_000, 104_000)
            } else {
                (60_000, 140_000)
            };
            mid = (mid + rng.range(-2, 2)).clamp(lo, hi);
        }
        if mix.margin && commands.len() % 100 == 99 {
            let cmd = next(CommandKind::MarkPrice {
                market: MarketId(0),
                price: Price(mid),
            });
            engine.apply(&cmd, &mut events);
            commands.push(cmd);
            continue;
        }
        let roll = rng.below(100);
        let marketable = roll >= 100 - mix.marketable_pct;
        let cancel =
            roll < mix.cancel_pct || (!marketable && live.len() > mix.target_orders * 11 / 10);
        let replace = !cancel && roll < mix.cancel_pct + mix.replace_pct && !marketable;
        let kind = if (cancel || replace) && !live.is_empty() {
            let i = rng.below(live.len() as u64) as usize;
            let (order_id, account) = live[i];
            let Some(o) = engine.order(order_id) else {
                live.swap_remove(i);
                continue; // filled meanwhile: pick again
            };
            if cancel {
                live.swap_remove(i);
                CommandKind::Cancel { account, order_id }
            } else if o.qty.0 > 1 && rng.chance(50) {
                CommandKind::CancelReplace {
                    account,
                    order_id,
                    price: o.price,
                    qty: Qty(rng.range(1, o.qty.0 - 1)),
                }
            } else {
                let sign = if o.side == Side::Buy { -1 } else { 1 };
                CommandKind::CancelReplace {
                    account,
                    order_id,
                    price: Price(mid + sign * rng.range(1, mix.spread_ticks)),
                    qty: Qty(rng.range(1, 100)),
                }
            }
        } else {
            let side = if rng.chance(50) {
                Side::Buy
            } else {
                Side::Sell
            };
            let sign = if side == Side::Buy { -1 } else { 1 };
            let order_type = if marketable {
                if rng.chance(20) {
                    OrderType::Market
                } else {
                    OrderType::Ioc(Price(mid - sign * rng.range(0, 20)))
                }
            } else {
                OrderType::Limit(Price(mid + sign * rng.range(1, mix.spread_ticks)))
            };
            client += 1;
            CommandKind::NewOrder(NewOrder {
                account: AccountId(rng.below(u64::from(mix.accounts)) as u32),
                market: pick_market(&mut rng),
                client_id: ClientOrderId(client),
                side,
                order_type,
                qty: Qty(rng.range(1, 100)),
                stp: StpMode::CancelResting,
                reduce_only: false,
            })
        };
        let cmd = next(kind);
        events.clear();
        engine.apply(&cmd, &mut events);
        if let Some(EventKind::Accepted {
            order_id, account, ..
        }) = events.first().map(|e| e.kind)
        {
            if engine.order(order_id).is_some() {
                live.push((order_id, account));
            }
        }
        commands.push(cmd);
    }
    Workload { setup, commands }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_share_yields_accepted_replaces() {
        let mix = Mix {
            commands: 20_000,
            cancel_pct: 24,
            replace_pct: 20,
            ..Mix::default()
        };
        let w = generate(&mix);
        let mut engine = Engine::new(engine_config(&mix));
        let mut events = Vec::new();
        for c in &w.setup {
            engine.apply(c, &mut events);
        }
        let (mut replaces, mut rejected) = (0, 0);
        for c in &w.commands {
            events.clear();
            engine.apply(c, &mut events);
            if matches!(c.kind, CommandKind::CancelReplace { .. }) {
                replaces += 1;
                rejected += usize::from(cascade_core::rejection(&events).is_some());
            }
        }
        // About 20% of the commands (fewer when the book is steered down by cancels).
        assert!(replaces > w.commands.len() / 10, "{replaces} replaces");
        assert_eq!(rejected, 0, "replaces name live orders with valid prices");
    }
}
