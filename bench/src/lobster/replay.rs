//! Replays LOBSTER order flow through the engine and checks it against the exchange.
//!
//! Mapping (see docs/LOBSTER.md for the reasoning and examples from real data):
//! - type 1 → a resting GTC limit order of account [`RESTING`];
//! - type 2 → replace down at the same price (keeps time priority); type 3 → cancel;
//! - type 4 → an IOC from the opposite side (account [`AGGRESSOR`]) of the executed size at
//!   the executed price, which must fill exactly the executed order; when the engine's
//!   book says it would not (the order is not first in line, or a better price rests),
//!   that is an exec mismatch and the exchange's effect is applied to the order directly;
//! - types 5 (hidden execution), 6 (cross) and 7 (halt) leave the visible book as it is
//!   and are counted.
//!
//! Depth the file never introduced (the seed book, and levels entering the top-N window
//! from beyond it) is held as synthetic orders of account [`SYNTHETIC`]; references to
//! orders the engine has never seen consume synthetic quantity at their price.
//! After every message the engine's top N levels are compared with the orderbook row: a
//! difference at a price that was already inside the window is a book mismatch (the row
//! is counted once), a difference at a price that has just entered the window is a
//! reveal; either way the level is resynchronised to the row.

use super::parse::{Message, Rows};
use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, EngineConfig, Event, EventKind,
    MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty, Side, StpMode,
};
use std::collections::HashMap;
use std::fmt;

/// Account holding the file's resting limit orders.
pub const RESTING: AccountId = AccountId(0);
/// Account sending the IOC orders that replay executions.
pub const AGGRESSOR: AccountId = AccountId(1);
/// Account holding depth the file never introduced.
pub const SYNTHETIC: AccountId = AccountId(2);
const MARKET: MarketId = MarketId(0);
/// Examples kept per disagreement category.
const EXAMPLES_PER_KIND: usize = 3;

/// Counts from one replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages replayed (= orderbook rows).
    pub rows: u64,
    /// Visible executions (type 4).
    pub executions: u64,
    /// Executions of orders the engine knew, checked against its matching.
    pub exec_checked: u64,
    /// Checked executions where the engine would not fill exactly that order.
    pub exec_mismatches: u64,
    /// Rows after which a level already inside the window disagreed with the exchange.
    pub book_mismatch_rows: u64,
    /// Levels learnt as they entered the window from beyond it.
    pub reveals: u64,
    /// Cancels, deletes and executions of orders the engine never saw.
    pub unknown_refs: u64,
    /// Synthetic orders moved behind an executed order that the exchange showed was ahead.
    pub requeued: u64,
    /// Hidden executions (type 5), counted only.
    pub hidden_executions: u64,
    /// Cross trades (type 6), counted only.
    pub crosses: u64,
    /// Trading-halt indicators (type 7), counted only.
    pub halts: u64,
    /// Orderbook rows with best bid ≥ best ask: not a book state, skipped.
    pub crossed_rows: u64,
}

impl Summary {
    /// Exec mismatches as a percentage of checked executions.
    pub fn exec_mismatch_pct(&self) -> f64 {
        pct(self.exec_mismatches, self.exec_checked)
    }

    /// Book mismatch rows as a percentage of rows.
    pub fn book_mismatch_pct(&self) -> f64 {
        pct(self.book_mismatch_rows, self.rows)
    }
}

fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// The two files have different row counts.
    RowCountMismatch {
        /// Message lines.
        messages: usize,
        /// Orderbook lines.
        rows: usize,
    },
    /// No messages.
    Empty,
    /// Prices do not fit one market of the engine (band too wide for the tick).
    PriceRange(String),
    /// The engine refused something the replay relies on.
    Engine {
        /// 1-based message line.
        line: usize,
        /// What happened.
        what: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::RowCountMismatch { messages, rows } => {
                write!(
                    f,
                    "message file has {messages} lines but orderbook file has {rows}"
                )
            }
            ReplayError::Empty => write!(f, "message file is empty"),
            ReplayError::PriceRange(s) => write!(f, "prices do not fit one market: {s}"),
            ReplayError::Engine { line, what } => {
                write!(f, "message line {line}: engine refused: {what}")
            }
        }
    }
}

impl std::error::Error for ReplayError {}

/// A replay's result: counts and a few located examples of each disagreement.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Counts.
    pub summary: Summary,
    /// `(category, example)` pairs, a few per category, in file order.
    pub examples: Vec<(&'static str, String)>,
    /// Every command the replay applied, in order: re-running them on a fresh engine
    /// with [`Report::config`] reproduces the replay (a LOBSTER latency workload).
    pub commands: Vec<Command>,
    /// The engine capacities the replay used.
    pub config: EngineConfig,
    /// How many of `commands` are set-up (market, accounts, the initial book).
    pub setup_len: usize,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// Derives one market that admits every price in the files: tick = gcd of all prices.
fn market_for(messages: &[Message], rows: &Rows) -> Result<MarketConfig, ReplayError> {
    let prices = messages
        .iter()
        .filter(|m| (1..=4).contains(&m.kind))
        .map(|m| m.price)
        .chain(rows.prices());
    let (mut lo, mut hi, mut tick) = (i64::MAX, 0, 0);
    for p in prices {
        lo = lo.min(p);
        hi = hi.max(p);
        tick = gcd(tick, p);
    }
    if tick == 0 {
        return Err(ReplayError::PriceRange("no prices".into()));
    }
    let cfg = MarketConfig {
        tick,
        lot_base_atoms: 1,
        min_price: Price(lo),
        max_price: Price(hi),
        max_qty: Qty((i64::MAX / hi).min(1 << 40)),
        market_band_bps: 0,
        risk: None,
    };
    cfg.validate()
        .map_err(|e| ReplayError::PriceRange(format!("{lo}..={hi} tick {tick}: {e:?}")))?;
    Ok(cfg)
}

/// Replays `messages` against `rows` (row i = book after message i).
pub fn replay(messages: &[Message], rows: &Rows) -> Result<Report, ReplayError> {
    if messages.len() != rows.len() {
        return Err(ReplayError::RowCountMismatch {
            messages: messages.len(),
            rows: rows.len(),
        });
    }
    if messages.is_empty() {
        return Err(ReplayError::Empty);
    }
    let adds = messages.iter().filter(|m| m.kind == 1).count();
    let max_orders = (adds + 65_536).min(cascade_core::engine::MAX_ORDERS as usize) as u32;
    let cfg = EngineConfig {
        max_orders,
        max_accounts: 3,
        max_markets: 1,
        max_positions: 3,
        max_conditionals: 0,
        liquidation_ring: 64,
        // Off: one account stands for the whole exchange's book.
        max_orders_per_account: max_orders,
        hash_seed: cascade_core::engine::DEFAULT_HASH_SEED,
    };
    let mut r = Replayer {
        engine: Engine::new(cfg),
        rows,
        known: HashMap::with_capacity(adds),
        events: Vec::with_capacity(64),
        seq: 0,
        line: 0,
        row_dirty: false,
        report: Report::default(),
        scratch: Vec::new(),
    };
    r.admin(CommandKind::AddMarket(Box::new(market_for(
        messages, rows,
    )?)))?;
    for a in [RESTING, AGGRESSOR, SYNTHETIC] {
        r.admin(CommandKind::OpenAccount(a))?;
    }
    r.seed(&messages[0])?;
    r.report.setup_len = r.report.commands.len();
    r.report.config = cfg;
    let mut i = 1;
    while i < messages.len() {
        // Executions on one side with one timestamp are one aggressive sweep: the file's
        // order among them is not a priority statement, so they are replayed in the
        // engine's priority order and the book is compared after the last of them.
        let m = &messages[i];
        let same_sweep = |n: &Message| {
            n.kind == 4 && m.kind == 4 && n.time_ns == m.time_ns && n.direction == m.direction
        };
        let end = i + messages[i..]
            .iter()
            .take_while(|n| same_sweep(n))
            .count()
            .max(1);
        r.line = i + 1;
        if end - i > 1 {
            r.sweep(&messages[i..end])?;
        } else {
            r.apply(m)?;
        }
        r.compare(end - 1, i - 1);
        i = end;
    }
    r.report.summary.rows = messages.len() as u64;
    Ok(r.report)
}

struct Replayer<'a> {
    engine: Engine,
    rows: &'a Rows,
    /// LOBSTER order reference → engine order id.
    known: HashMap<i64, OrderId>,
    events: Vec<Event>,
    seq: u64,
    /// 1-based line of the message being replayed.
    line: usize,
    /// Set when a message had to repair the book (stale crossing quantity).
    row_dirty: bool,
    report: Report,
    scratch: Vec<(OrderId, AccountId, Qty)>,
}

fn side_of(direction: i8) -> Side {
    if direction == 1 {
        Side::Buy
    } else {
        Side::Sell
    }
}

/// True if `a` is strictly worse than `b` for a level on `side`.
fn worse(side: Side, a: i64, b: i64) -> bool {
    match side {
        Side::Buy => a < b,
        Side::Sell => a > b,
    }
}

impl Replayer<'_> {
    fn run(&mut self, kind: CommandKind) {
        self.seq += 1;
        self.events.clear();
        let cmd = Command {
            seq: self.seq,
            ts_ns: 0,
            kind,
        };
        self.engine.apply(&cmd, &mut self.events);
        self.report.commands.push(cmd);
    }

    fn rejected(&self) -> Option<String> {
        cascade_core::rejection(&self.events).map(|r| format!("{r:?}"))
    }

    fn admin(&mut self, kind: CommandKind) -> Result<(), ReplayError> {
        self.run(kind);
        match self.rejected() {
            Some(what) => Err(ReplayError::Engine {
                line: self.line,
                what,
            }),
            None => Ok(()),
        }
    }

    fn example(&mut self, kind: &'static str, text: &str) {
        if self
            .report
            .examples
            .iter()
            .filter(|(k, _)| *k == kind)
            .count()
            < EXAMPLES_PER_KIND
        {
            self.report
                .examples
                .push((kind, format!("line {}: {text}", self.line)));
        }
    }

    /// Places a limit order; returns its id.
    fn place(
        &mut self,
        account: AccountId,
        side: Side,
        order_type: OrderType,
        qty: i64,
    ) -> Result<OrderId, ReplayError> {
        self.run(CommandKind::NewOrder(NewOrder {
            account,
            market: MARKET,
            client_id: ClientOrderId(self.seq),
            side,
            order_type,
            qty: Qty(qty),
            stp: StpMode::CancelAggressor,
            reduce_only: false,
        }));
        match self.events.first().map(|e| e.kind) {
            Some(EventKind::Accepted { order_id, .. }) => Ok(order_id),
            _ => Err(ReplayError::Engine {
                line: self.line,
                what: self.rejected().unwrap_or_default(),
            }),
        }
    }

    /// Reduces a resting order by `by` lots (cancels it when nothing would be left).
    fn reduce(&mut self, account: AccountId, id: OrderId, price: Price, left: Qty, by: i64) {
        let qty = Qty(left.0 - by);
        if qty.0 > 0 {
            self.run(CommandKind::CancelReplace {
                account,
                order_id: id,
                price,
                qty,
            });
        } else {
            self.run(CommandKind::Cancel {
                account,
                order_id: id,
            });
        }
    }

    fn live(&self, lobster_id: i64) -> Option<cascade_core::OrderView> {
        self.known
            .get(&lobster_id)
            .and_then(|&id| self.engine.order(id))
    }

    /// Seeds the book from row 0 (the state after message 0). If message 0 added an
    /// order, it rests behind the rest of its level, as it arrived last; any other
    /// message 0 is counted but not applied, as row 0 already shows its effect.
    fn seed(&mut self, first: &Message) -> Result<(), ReplayError> {
        self.line = 1;
        for k in 0..self.rows.levels {
            for (side, level) in [
                (Side::Sell, self.rows.ask(0, k)),
                (Side::Buy, self.rows.bid(0, k)),
            ] {
                let Some((price, mut qty)) = level else {
                    continue;
                };
                if first.kind == 1 && side_of(first.direction) == side && first.price == price {
                    qty -= first.size;
                }
                if qty > 0 {
                    self.place(SYNTHETIC, side, OrderType::Limit(Price(price)), qty)?;
                }
            }
        }
        match first.kind {
            // Cancels and executions of message 0 are already reflected in row 0.
            2 | 3 => {}
            4 => self.report.summary.executions += 1,
            _ => self.apply(first)?,
        }
        Ok(())
    }

    fn apply(&mut self, m: &Message) -> Result<(), ReplayError> {
        let side = side_of(m.direction);
        match m.kind {
            1 => self.add(m, side)?,
            2 | 3 => match self.live(m.id) {
                Some(o) => {
                    let by = if m.kind == 3 { o.qty.0 } else { m.size };
                    self.reduce(RESTING, o.id, o.price, o.qty, by);
                }
                None => self.unknown(side, m.price, m.size),
            },
            4 => self.execute(m, side)?,
            5 => self.report.summary.hidden_executions += 1,
            6 => self.report.summary.crosses += 1,
            _ => self.report.summary.halts += 1,
        }
        Ok(())
    }

    fn add(&mut self, m: &Message, side: Side) -> Result<(), ReplayError> {
        if m.size == 0 {
            return Ok(());
        }
        // The exchange's book is never crossed: quantity here that this add would take is
        // stale (its removal happened outside what the file shows). Drop it first.
        while let Some((best, _)) = self.engine.best(MARKET, side.opposite()) {
            if !side.crosses(Price(m.price), best) {
                break;
            }
            self.example(
                "stale crossing level",
                &format!(
                    "add {} at {} met resting {} at {}",
                    m.id,
                    m.price,
                    side.opposite() as u8,
                    best.0
                ),
            );
            self.row_dirty = true;
            let stale: Vec<_> = self
                .engine
                .level_orders(MARKET, side.opposite(), best)
                .collect();
            for o in stale {
                self.run(CommandKind::Cancel {
                    account: o.account,
                    order_id: o.id,
                });
            }
        }
        let id = self.place(RESTING, side, OrderType::Limit(Price(m.price)), m.size)?;
        self.known.insert(m.id, id);
        Ok(())
    }

    fn execute(&mut self, m: &Message, side: Side) -> Result<(), ReplayError> {
        self.report.summary.executions += 1;
        let Some(o) = self.live(m.id) else {
            self.unknown(side, m.price, m.size);
            return Ok(());
        };
        self.report.summary.exec_checked += 1;
        let best = self.engine.best(MARKET, side).map(|(p, _)| p.0);
        let ahead: Vec<_> = self
            .engine
            .level_orders(MARKET, side, Price(m.price))
            .take_while(|f| f.id != o.id)
            .collect();
        let why = if best != Some(m.price) {
            Some((
                "exec: better price rests",
                format!(
                    "order {} executed at {} but engine best is {best:?}",
                    m.id, m.price
                ),
            ))
        } else if let Some(first) = ahead.iter().find(|f| f.account != SYNTHETIC) {
            let first_ref = self
                .known
                .iter()
                .find(|(_, &v)| v == first.id)
                .map(|(&k, _)| k);
            Some((
                "exec: not first in queue",
                format!(
                    "order {} executed at {} behind order {first_ref:?}",
                    m.id, m.price
                ),
            ))
        } else if o.qty.0 < m.size {
            Some((
                "exec: size exceeds order",
                format!("order {} executed {} but has {}", m.id, m.size, o.qty.0),
            ))
        } else {
            None
        };
        if let Some((kind, text)) = why {
            self.report.summary.exec_mismatches += 1;
            self.example(kind, &text);
            self.reduce(RESTING, o.id, o.price, o.qty, m.size.min(o.qty.0));
            return Ok(());
        }
        // Only depth of unknown age is ahead: the exchange has just shown that this order
        // had priority over it, so that depth moves behind (its true place was never seen).
        for f in ahead {
            self.report.summary.requeued += 1;
            self.run(CommandKind::Cancel {
                account: SYNTHETIC,
                order_id: f.id,
            });
            self.place(SYNTHETIC, side, OrderType::Limit(Price(m.price)), f.qty.0)?;
        }
        self.place(
            AGGRESSOR,
            side.opposite(),
            OrderType::Ioc(Price(m.price)),
            m.size,
        )?;
        let mut filled = 0;
        let mut exact = true;
        for e in &self.events {
            if let EventKind::Fill {
                maker_order,
                price,
                qty,
                ..
            } = e.kind
            {
                exact &= maker_order == o.id && price.0 == m.price;
                filled += qty.0;
            }
        }
        if !exact || filled != m.size {
            self.report.summary.exec_mismatches += 1;
            self.example(
                "exec: engine filled other orders",
                &format!("order {} size {}: filled {filled}", m.id, m.size),
            );
        }
        Ok(())
    }

    /// A reference to an order the engine never saw: it was part of synthetic depth.
    fn unknown(&mut self, side: Side, price: i64, size: i64) {
        self.report.summary.unknown_refs += 1;
        self.remove_qty(side, price, size);
    }

    /// Removes `qty` lots that left a level without a message the engine could follow:
    /// synthetic depth first (oldest first); then the file's own orders, preferring one
    /// whose size is exactly what is missing (deletes of whole orders are far more common
    /// than partial cancels), then whole orders that fit, oldest first, then part of the
    /// oldest.
    fn remove_qty(&mut self, side: Side, price: i64, mut qty: i64) {
        let mut orders = std::mem::take(&mut self.scratch);
        orders.clear();
        orders.extend(
            self.engine
                .level_orders(MARKET, side, Price(price))
                .map(|o| (o.id, o.account, o.qty)),
        );
        orders.sort_by_key(|&(_, a, _)| a != SYNTHETIC); // stable: synthetic first, oldest first
        let synthetic = orders
            .iter()
            .take_while(|&&(_, a, _)| a == SYNTHETIC)
            .count();
        for pass in 0..4 {
            // Pass 1 decides the exact-size candidate from what pass 0 left to remove.
            let exact = orders[synthetic..]
                .iter()
                .position(|o| o.2 .0 == qty)
                .map(|i| i + synthetic);
            for (i, (id, account, left)) in orders.iter_mut().enumerate() {
                let eligible = match pass {
                    0 => i < synthetic,
                    1 => Some(i) == exact,
                    2 => left.0 <= qty,
                    _ => true,
                };
                if qty == 0 || left.0 == 0 || !eligible {
                    continue;
                }
                let by = qty.min(left.0);
                self.reduce(*account, *id, Price(price), *left, by);
                left.0 -= by;
                qty -= by;
            }
        }
        self.scratch = orders;
    }

    /// Replays the executions of one sweep: unknown orders first, then known orders in
    /// the engine's priority order (best price, then queue position).
    fn sweep(&mut self, execs: &[Message]) -> Result<(), ReplayError> {
        let mut keyed: Vec<(i64, usize, &Message)> = Vec::with_capacity(execs.len());
        for m in execs {
            let side = side_of(m.direction);
            match self.live(m.id) {
                None => {
                    self.report.summary.executions += 1;
                    self.unknown(side, m.price, m.size);
                }
                Some(o) => {
                    let place = self
                        .engine
                        .level_orders(MARKET, side, o.price)
                        .position(|f| f.id == o.id)
                        .unwrap_or(0);
                    let price_rank = if side == Side::Buy {
                        -o.price.0
                    } else {
                        o.price.0
                    };
                    keyed.push((price_rank, place, m));
                }
            }
        }
        keyed.sort_by_key(|&(p, q, _)| (p, q));
        for (_, _, m) in keyed {
            self.execute(m, side_of(m.direction))?;
        }
        Ok(())
    }

    /// Compares the engine's top N with row `i` (`prev` is the row before the last
    /// message(s)) and resynchronises any difference.
    fn compare(&mut self, i: usize, prev: usize) {
        let n = self.rows.levels;
        let mut dirty = std::mem::take(&mut self.row_dirty);
        if let (Some((ask, _)), Some((bid, _))) = (self.rows.ask(i, 0), self.rows.bid(i, 0)) {
            if bid >= ask {
                // No book rests crossed: the row is not a book state, so nothing is synced to it.
                self.report.summary.crossed_rows += 1;
                self.example(
                    "crossed row skipped",
                    &format!("best bid {bid} >= best ask {ask}"),
                );
                return;
            }
        }
        let mut additions: Vec<(Side, i64, i64)> = Vec::new();
        for side in [Side::Sell, Side::Buy] {
            let level = |row: usize, k: usize| {
                if side == Side::Sell {
                    self.rows.ask(row, k)
                } else {
                    self.rows.bid(row, k)
                }
            };
            let row: Vec<(i64, i64)> = (0..n).map_while(|k| level(i, k)).collect();
            let bound = (row.len() == n).then(|| row[n - 1].0);
            let prev_bound = level(prev, n - 1).map(|(p, _)| p);
            let mut engine: Vec<(i64, i64)> = Vec::with_capacity(n + 8);
            self.engine
                .depth(MARKET, side, n + 8, |p, q, _| engine.push((p.0, q.0)));
            engine.retain(|&(p, _)| bound.is_none_or(|b| !worse(side, p, b)));
            let mut prices: Vec<i64> = row.iter().chain(&engine).map(|&(p, _)| p).collect();
            prices.sort_unstable();
            prices.dedup();
            for p in prices {
                let find =
                    |v: &[(i64, i64)]| v.iter().find(|&&(q, _)| q == p).map_or(0, |&(_, q)| q);
                let (have, want) = (find(&engine), find(&row));
                if have == want {
                    continue;
                }
                if prev_bound.is_some_and(|pb| worse(side, p, pb)) {
                    self.report.summary.reveals += 1;
                } else {
                    dirty = true;
                    self.example(
                        "book: level differs inside window",
                        &format!("{side:?} {p}: engine {have}, exchange {want}"),
                    );
                }
                if have > want {
                    self.remove_qty(side, p, have - want);
                } else {
                    additions.push((side, p, want - have));
                }
            }
        }
        for (side, price, qty) in additions {
            // Cannot cross after the removals above; if the engine refuses anyway, the
            // level stays wrong and the row counts as a mismatch rather than ending the run.
            if self
                .place(SYNTHETIC, side, OrderType::PostOnly(Price(price)), qty)
                .is_err()
            {
                dirty = true;
            }
        }
        self.report.summary.book_mismatch_rows += u64::from(dirty);
    }
}
