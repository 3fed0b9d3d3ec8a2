//! A multi-market population for contagion: the cascade simulator's BTC-like market
//! copied `markets` times, traders in long/short pairs of which a share hold the same
//! side in two neighbouring markets on one cross-margined balance, and the makers'
//! ladders in every market.
//!
//! Invariants: deterministic in the seed; every set-up command is accepted (checked by
//! [`build`]); a cross-margined pair holds markets `a` and `a + 1 mod markets`.

use crate::cascade::{new_order_in, open_pair, Population, MAKERS};
use crate::rng::Rng;
use cascade_core::{
    AccountId, ClientOrderId, CommandKind, Engine, EngineConfig, MarketId, NewOrder, Price, Side,
};

/// The multi-market population.
#[derive(Clone, Copy, Debug)]
pub struct MultiPopulation {
    /// The single-market parameters (market config, start, leverage draw, depth, fund).
    pub base: Population,
    /// Markets (≥ 2).
    pub markets: u32,
    /// Percent of trader pairs holding two markets.
    pub cross_pct: u64,
}

impl MultiPopulation {
    /// `accounts` accounts over `markets` markets, half the pairs cross-margined.
    pub fn new(accounts: u32, markets: u32) -> MultiPopulation {
        MultiPopulation {
            base: Population::new(accounts),
            markets: markets.max(2),
            cross_pct: 50,
        }
    }

    /// Engine capacities for the population.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_orders: (1 << 12) * self.markets,
            max_markets: self.markets,
            max_positions: self.base.accounts * 2,
            max_orders_per_account: (1 << 12) * self.markets,
            ..self.base.engine_config()
        }
    }

    /// The commands that build it.
    pub fn setup(&self) -> Vec<CommandKind> {
        let (pop, p0) = (self.base, self.base.start);
        let mut rng = Rng::new(pop.seed);
        let mut out = Vec::new();
        for m in 0..self.markets {
            out.push(CommandKind::AddMarket(Box::new(pop.market())));
            out.push(CommandKind::MarkPrice {
                market: MarketId(m),
                price: Price(p0),
            });
        }
        out.extend((0..pop.accounts).map(|a| CommandKind::OpenAccount(AccountId(a))));
        let deposit = |account: u32, amount: i64| CommandKind::Deposit {
            account: AccountId(account),
            amount,
        };
        let mut oi = vec![0i64; self.markets as usize];
        let mut a = MAKERS;
        while a + 1 < pop.accounts {
            let (long, short) = if rng.chance(50) {
                (a, a + 1)
            } else {
                (a + 1, a)
            };
            let first = rng.below(u64::from(self.markets)) as u32;
            let held: Vec<u32> = if rng.chance(self.cross_pct) {
                vec![first, (first + 1) % self.markets]
            } else {
                vec![first]
            };
            let money = p0 * rng.range(20, 2_000) / 100;
            let draw = pop.leverages.len() as u64;
            let lev = pop.leverages[rng.below(draw) as usize];
            let short_lev = pop.leverages[rng.below(draw) as usize];
            let size = (money * lev / p0).max(1);
            let n = held.len() as i64;
            let need = |lev: i64| n * (size * p0 / lev + size * p0 / 1_000 + 10 * size);
            out.push(deposit(long, need(lev)));
            out.push(deposit(short, need(short_lev)));
            for &m in &held {
                let m = MarketId(m);
                out.extend(open_pair(m, (long, short), p0, size));
                oi[m.0 as usize] += size;
            }
            a += 2;
        }
        for (m, &open) in oi.iter().enumerate() {
            let per_level = (open * pop.depth_percent / 100 / 70 / i64::from(MAKERS)).max(1);
            for maker in 0..MAKERS {
                out.push(deposit(maker, per_level * 70 * p0));
                for k in 0..90u64 {
                    let (side, price) = if k < 70 {
                        (Side::Buy, p0 - p0 * (k as i64 + 1) * 5 / 1_000)
                    } else {
                        (Side::Sell, p0 + p0 * (k as i64 - 69) * 5 / 1_000)
                    };
                    out.push(CommandKind::NewOrder(NewOrder {
                        client_id: ClientOrderId(1 + k + 1_000 * m as u64),
                        ..new_order_in(MarketId(m as u32), maker, side, price, per_level)
                    }));
                }
            }
        }
        let total: i128 = oi.iter().map(|&x| i128::from(x) * i128::from(p0)).sum();
        let fund = (total * i128::from(pop.fund_bps) / 10_000) as i64;
        if fund > 0 {
            out.push(CommandKind::InsuranceDeposit {
                market: None,
                amount: fund,
            });
        }
        out
    }

    /// Accounts holding a position in both `i` and `j` of `engine` (for `i == j`: in `i`).
    pub fn holders(engine: &Engine, accounts: u32, i: MarketId, j: MarketId) -> Vec<bool> {
        (0..accounts)
            .map(|a| {
                let holds = |m| {
                    engine
                        .position(AccountId(a), m)
                        .is_some_and(|p| p.size != 0)
                };
                holds(i) && holds(j)
            })
            .collect()
    }
}

/// A fresh engine holding the population (every set-up command accepted).
pub fn build(pop: &MultiPopulation) -> Result<Engine, String> {
    let mut engine =
        Engine::try_new(pop.engine_config()).map_err(|e| format!("engine config: {e:?}"))?;
    let mut tally = crate::cascade::Tally::default();
    for c in crate::cascade::sequence(pop.setup(), 1) {
        engine.apply(&c, &mut tally);
    }
    if tally.rejects > 0 {
        return Err(format!("{} set-up commands were rejected", tally.rejects));
    }
    Ok(engine)
}
