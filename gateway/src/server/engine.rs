//! The engine thread: the sequencer, the journal's appending side and the matching
//! engine, in that order, on one pinned core.
//!
//! Invariants: sequence numbers are dense and increase by one per command; a command
//! is appended to the journal before it is applied, and applied before the next one is
//! sequenced; the durable watermark published in [`Shared`] only moves forward; the
//! client-id tables only name orders and stop orders that were live when entered
//! (stale entries are found dead by the engine and dropped on use).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, Event, EventKind, EventSink, MarketId,
    OrderId, Side,
};
use crossbeam::queue::ArrayQueue;
use smallvec::SmallVec;

use super::request::{Ask, Body, MarketStats, PositionRow, Reply, Request};
use super::Shared;
use crate::config::GatewayConfig;
use crate::journal::{Journal, JournalConfig};
use crate::snapshot_file::write_snapshot;

/// How long the engine thread watches its ring before parking.
const SPIN: Duration = Duration::from_micros(100);

/// Collects one command's events.
struct Collect(SmallVec<[Event; 6]>);

impl EventSink for Collect {
    fn emit(&mut self, event: Event) {
        self.0.push(event);
    }
}

/// The engine thread's state.
pub struct EngineThread {
    engine: Engine,
    journal: Journal,
    shared: Arc<Shared>,
    inbound: Arc<ArrayQueue<Request>>,
    outbound: Arc<ArrayQueue<Reply>>,
    wake_io: Arc<mio::Waker>,
    dir: std::path::PathBuf,
    next_seq: u64,
    snapshot_every: u64,
    since_snapshot: u64,
    /// Client ids given by replaces, and stop orders' client ids: (account, client id).
    aliases: HashMap<(u32, u64), OrderId>,
    stops: HashMap<(u32, u64), OrderId>,
    touched: Vec<bool>,
    published: u64,
    /// A reply pushed in this batch is already durable: wake the I/O thread.
    wake_pending: bool,
}

/// Recovers the engine from the newest good snapshot and the journal in `dir`, and
/// opens the journal for appending.
pub fn recover(
    cfg: &GatewayConfig,
    on_durable: Option<crate::journal::DurableHook>,
) -> Result<(Engine, Journal, String), String> {
    let dir = &cfg.gateway.journal_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let engine_cfg = cfg.engine_config();
    match crate::engine_file::read_engine_config(dir) {
        Ok(on_disk) if on_disk != engine_cfg => {
            return Err(format!(
            "config key `engine`: differs from the capacities this journal was recorded with ({})",
            crate::engine_file::engine_config_line(&on_disk)
        ))
        }
        Ok(_) => {}
        Err(_) => crate::engine_file::write_engine_config(dir, &engine_cfg)?,
    }
    let mut jcfg = JournalConfig::new(dir);
    jcfg.fsync = cfg.fsync_policy().map_err(|e| e.to_string())?;
    jcfg.on_durable = on_durable;
    // With no fsync a batch is one write into the page cache: done on the engine thread
    // it saves a hand-off to the writer thread and back.
    jcfg.inline_writes = jcfg.fsync == crate::journal::FsyncPolicy::Never;
    let r = crate::recovery::recover(jcfg, engine_cfg)?;
    let skipped = r.skipped.iter().map(|s| {
        format!(
            " skipped={:?}",
            format!("{}: {}", s.path.display(), s.reason)
        )
    });
    let note = format!(
        "snapshot_seq={} replayed={} last_seq={} state_hash={:016x}{}",
        r.snapshot_seq,
        r.replayed,
        r.report.last_seq,
        r.engine.state_hash(),
        skipped.collect::<String>()
    );
    let (engine, journal) = (r.engine, r.journal);
    Ok((engine, journal, note))
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl EngineThread {
    /// Wraps a recovered engine and journal.
    pub fn new(
        cfg: &GatewayConfig,
        (engine, journal): (Engine, Journal),
        shared: Arc<Shared>,
        inbound: Arc<ArrayQueue<Request>>,
        outbound: Arc<ArrayQueue<Reply>>,
        wake_io: Arc<mio::Waker>,
    ) -> EngineThread {
        let next_seq = journal.next_seq();
        shared
            .durable_seq
            .store(journal.durable_seq(), Ordering::Release);
        shared.last_seq.store(next_seq - 1, Ordering::Release);
        EngineThread {
            touched: vec![false; cfg.markets.len().max(engine.market_count())],
            engine,
            journal,
            shared,
            inbound,
            outbound,
            wake_io,
            dir: cfg.gateway.journal_dir.clone(),
            next_seq,
            snapshot_every: cfg.gateway.snapshot_every,
            since_snapshot: 0,
            aliases: HashMap::new(),
            stops: HashMap::new(),
            published: 0,
            wake_pending: false,
        }
    }

    /// Opens what the config names and the journal lacks: every market and account on
    /// a new journal; markets added at the end of the config later. A market whose
    /// parameters differ from the journal's is an error naming it.
    pub fn genesis(&mut self, cfg: &GatewayConfig) -> Result<(), String> {
        let fresh = self.next_seq == 1;
        for (i, spec) in cfg.markets.iter().enumerate() {
            let key = format!("markets[{i}]");
            let mc = spec.market_config(&key).map_err(|e| e.to_string())?;
            if let Some(have) = self.engine.market_config(MarketId(i as u32)) {
                if *have != mc {
                    return Err(format!(
                        "config key `{key}`: differs from market {i} in the journal; markets cannot change once opened"
                    ));
                }
                continue;
            }
            self.genesis_cmd(CommandKind::AddMarket(Box::new(mc)))?;
            let m = MarketId(i as u32);
            if spec.insurance_deposit > 0 {
                let own = spec
                    .risk
                    .as_ref()
                    .and_then(|r| r.liquidation.as_ref())
                    .is_some_and(|l| l.isolated_fund);
                self.genesis_cmd(CommandKind::InsuranceDeposit {
                    market: own.then_some(m),
                    amount: spec.insurance_deposit,
                })?;
            }
            if spec.initial_mark > 0 && spec.risk.is_some() {
                self.genesis_cmd(CommandKind::MarkPrice {
                    market: m,
                    price: cascade_core::Price(spec.initial_mark),
                })?;
            }
        }
        if fresh {
            for a in &cfg.accounts {
                self.genesis_cmd(CommandKind::OpenAccount(AccountId(a.id)))?;
                if a.deposit > 0 {
                    self.genesis_cmd(CommandKind::Deposit {
                        account: AccountId(a.id),
                        amount: a.deposit,
                    })?;
                }
            }
        }
        self.journal.flush().map_err(|e| e.to_string())?;
        self.journal.sync().map_err(|e| e.to_string())?;
        self.publish_durable();
        Ok(())
    }

    fn genesis_cmd(&mut self, kind: CommandKind) -> Result<(), String> {
        let (_, events) = self.sequence(kind)?;
        match cascade_core::event::rejection(&events) {
            Some(r) => Err(format!("the engine refused a startup command: {r:?}")),
            None => Ok(()),
        }
    }

    /// The startup reply seeding the I/O thread's order and book mirrors.
    pub fn startup_reply(&self) -> Reply {
        let mut orders = Vec::new();
        let mut levels = Vec::new();
        for m in (0..self.engine.market_count() as u32).map(MarketId) {
            for side in [Side::Buy, Side::Sell] {
                self.engine.depth(m, side, usize::MAX, |p, q, n| {
                    levels.push((m, side, p, q, n));
                });
            }
        }
        for &(m, side, p, _, _) in &levels {
            orders.extend(self.engine.level_orders(m, side, p));
        }
        Reply {
            seq: self.next_seq - 1,
            origin: None,
            rid: 0,
            body: Body::Startup { orders, levels },
        }
    }

    /// Runs until the stop flag is set and the inbound ring is empty; then syncs the
    /// journal and writes a snapshot.
    pub fn run(mut self, startup: Reply) -> Result<(), String> {
        self.push(startup);
        self.stats(true);
        self.wake_io.wake().ok();
        loop {
            let mut n = 0;
            while let Some(req) = self.inbound.pop() {
                self.handle(req)?;
                n += 1;
                if n == 512 {
                    break;
                }
            }
            if n > 0 {
                self.stats(false);
            }
            if std::mem::take(&mut self.wake_pending) {
                self.wake_io.wake().ok();
            }
            self.housekeeping(n == 0)?;
            if n == 0 {
                if self.shared.stop.load(Ordering::Acquire) && self.inbound.is_empty() {
                    break;
                }
                if self.spin_for_work() {
                    continue;
                }
                let idle = if self.journal.in_flight() || self.journal.has_batch() {
                    Duration::from_micros(50)
                } else {
                    Duration::from_millis(5)
                };
                std::thread::park_timeout(idle);
            }
        }
        self.finish()
    }

    /// Before parking, watches the ring for a few microseconds (yielding the core to
    /// any runnable thread): a request arriving meanwhile skips a park and unpark.
    fn spin_for_work(&self) -> bool {
        let until = Instant::now() + SPIN;
        while Instant::now() < until {
            if !self.inbound.is_empty() {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    fn finish(mut self) -> Result<(), String> {
        self.journal.flush().map_err(|e| e.to_string())?;
        self.journal.sync().map_err(|e| e.to_string())?;
        self.publish_durable();
        self.snapshot()?;
        crate::log!(
            "info",
            "final_snapshot",
            "seq={} state_hash={:016x}",
            self.next_seq - 1,
            self.engine.state_hash()
        );
        self.shared.engine_done.store(true, Ordering::Release);
        self.wake_io.wake().ok();
        Ok(())
    }

    /// Hands the batch to the writer when idle and nothing is in flight (group commit),
    /// takes in finished writes, publishes the watermark, snapshots when due.
    fn housekeeping(&mut self, idle: bool) -> Result<(), String> {
        if idle && self.journal.has_batch() && !self.journal.in_flight() {
            self.journal.flush().map_err(|e| e.to_string())?;
        } else {
            self.journal
                .tick(Instant::now())
                .map_err(|e| e.to_string())?;
        }
        self.publish_durable();
        if self.snapshot_every > 0 && self.since_snapshot >= self.snapshot_every {
            self.journal.flush().map_err(|e| e.to_string())?;
            self.journal.sync().map_err(|e| e.to_string())?;
            self.publish_durable();
            self.snapshot()?;
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<(), String> {
        let mut buf = Vec::new();
        self.engine.snapshot(&mut buf);
        write_snapshot(&self.dir, self.next_seq - 1, &buf)?;
        self.since_snapshot = 0;
        Ok(())
    }

    fn publish_durable(&mut self) {
        let d = self.journal.durable_seq();
        if d > self.published {
            self.published = d;
            if self.shared.durable_seq.fetch_max(d, Ordering::AcqRel) < d {
                self.wake_io.wake().ok();
            }
        }
    }

    /// Pushes a reply. One that is already durable (a query's, or a command's under a
    /// policy that has caught up) wakes the I/O thread at the end of the batch; the
    /// others are released by the journal writer's own wake-up.
    fn push(&mut self, mut r: Reply) {
        if r.seq <= self.shared.durable() {
            self.wake_pending = true;
        }
        loop {
            match self.outbound.push(r) {
                Ok(()) => return,
                Err(back) => {
                    r = back;
                    self.wake_io.wake().ok();
                    std::thread::yield_now();
                }
            }
        }
    }

    /// Sequences, journals and applies one command.
    fn sequence(&mut self, kind: CommandKind) -> Result<(u64, SmallVec<[Event; 6]>), String> {
        let cmd = Command {
            seq: self.next_seq,
            ts_ns: now_ns(),
            kind,
        };
        self.journal
            .append(&cmd)
            .map_err(|e| format!("journal: {e}"))?;
        let mut sink = Collect(SmallVec::new());
        self.engine.apply(&cmd, &mut sink);
        self.next_seq += 1;
        self.since_snapshot += 1;
        self.shared.last_seq.store(cmd.seq, Ordering::Release);
        self.shared.applied.fetch_add(1, Ordering::Relaxed);
        self.note(&cmd.kind, &sink.0);
        Ok((cmd.seq, sink.0))
    }

    /// Keeps the client-id tables and the touched-market flags up to date.
    fn note(&mut self, kind: &CommandKind, events: &[Event]) {
        for e in events {
            match e.kind {
                EventKind::ConditionalAccepted {
                    order_id, account, ..
                } => {
                    if let CommandKind::NewConditional(c) = kind {
                        self.stops.insert((account.0, c.client_id.0), order_id);
                    }
                }
                EventKind::Fill { market, .. }
                | EventKind::MarkUpdated { market, .. }
                | EventKind::FundingIndexed { market, .. }
                | EventKind::AdlFill { market, .. } => {
                    if let Some(t) = self.touched.get_mut(market.0 as usize) {
                        *t = true;
                    }
                }
                EventKind::LiquidationStarted { .. } => {
                    self.shared.liquidations.fetch_add(1, Ordering::Relaxed);
                }
                EventKind::MarketAdded(m) if self.touched.len() <= m.0 as usize => {
                    self.touched.resize(m.0 as usize + 1, true);
                }
                _ => {}
            }
        }
    }

    fn handle(&mut self, req: Request) -> Result<(), String> {
        let Request { origin, rid, what } = req;
        let (seq, body) = match what {
            Ask::Command(kind) => {
                let (seq, events) = self.sequence(kind)?;
                (seq, Body::Events(events))
            }
            Ask::CancelByClient { account, client_id } => match self.resolve(account, client_id) {
                Some((order_id, false)) => {
                    self.run_cmd(CommandKind::Cancel { account, order_id })?
                }
                Some((order_id, true)) => {
                    self.run_cmd(CommandKind::CancelConditional { account, order_id })?
                }
                None => (self.next_seq - 1, Body::Unknown),
            },
            Ask::ReplaceByClient {
                account,
                orig,
                new_id,
                price,
                qty,
            } => match self.resolve(account, orig) {
                Some((order_id, false)) => {
                    let out = self.run_cmd(CommandKind::CancelReplace {
                        account,
                        order_id,
                        price,
                        qty,
                    })?;
                    let refused = matches!(&out.1, Body::Events(ev) if cascade_core::event::rejection(ev).is_some());
                    if new_id != orig && !refused {
                        self.aliases.insert((account.0, new_id.0), order_id);
                    }
                    out
                }
                _ => (self.next_seq - 1, Body::Unknown),
            },
            Ask::Status {
                account,
                client_id,
                order_id,
            } => {
                let id = order_id.or_else(|| {
                    client_id
                        .and_then(|c| self.resolve(account, c))
                        .map(|r| r.0)
                });
                let view = id
                    .and_then(|id| self.engine.order(id))
                    .filter(|o| o.account == account);
                (self.next_seq - 1, Body::Order(view))
            }
            Ask::Positions { account } => {
                (self.next_seq - 1, Body::Positions(self.positions(account)))
            }
        };
        self.push(Reply {
            seq,
            origin,
            rid,
            body,
        });
        Ok(())
    }

    fn run_cmd(&mut self, kind: CommandKind) -> Result<(u64, Body), String> {
        let (seq, events) = self.sequence(kind)?;
        Ok((seq, Body::Events(events)))
    }

    /// The live order (`false`) or stop order (`true`) an account knows by a client id.
    fn resolve(&mut self, account: AccountId, c: ClientOrderId) -> Option<(OrderId, bool)> {
        let key = (account.0, c.0);
        if let Some(&id) = self.aliases.get(&key) {
            if self.engine.order(id).is_some() {
                return Some((id, false));
            }
            self.aliases.remove(&key);
        }
        if let Some(o) = self.engine.order_by_client(account, c) {
            return Some((o.id, false));
        }
        self.stops.get(&key).map(|&id| (id, true))
    }

    fn positions(&self, a: AccountId) -> Vec<PositionRow> {
        let mut rows = Vec::new();
        for m in (0..self.engine.market_count() as u32).map(MarketId) {
            let Some(p) = self.engine.position(a, m).filter(|p| p.size != 0) else {
                continue;
            };
            let mark = self.engine.market_risk(m).map_or(0, |r| r.mark);
            let pool = if p.isolated { Some(m) } else { None };
            let (equity, maintenance) = self.engine.pool_risk(a, pool).unwrap_or((0, 0));
            let initial = self.engine.pool_initial(a, pool).map_or(0, |x| x.1);
            rows.push(PositionRow {
                market: m,
                size: p.size,
                entry: (p.cost / i128::from(p.size)) as i64,
                mark,
                upnl: i128::from(p.size) * i128::from(mark) - p.cost,
                initial,
                maintenance,
                equity,
                liquidation_price: liquidation_price(p.size, mark, equity, maintenance),
            });
        }
        rows
    }

    /// Market figures for touched markets (all of them when `all`).
    fn stats(&mut self, all: bool) {
        let mut rows = Vec::new();
        for (i, t) in self.touched.iter_mut().enumerate() {
            if !(all || *t) {
                continue;
            }
            *t = false;
            let m = MarketId(i as u32);
            let Some(r) = self.engine.market_risk(m) else {
                continue;
            };
            let fund = self
                .engine
                .market_fund(m)
                .unwrap_or_else(|| self.engine.fund());
            let leverage_bps = r
                .leverage
                .map_or(0, |l| ((i128::from(l.to_bits()) * 10_000) >> 32) as i64);
            rows.push(MarketStats {
                market: m,
                mark: r.mark,
                open_interest: r.open_interest,
                leverage_bps,
                fund_equity: fund.equity,
            });
        }
        if rows.is_empty() {
            return;
        }
        let eq = self.engine.fund().equity;
        self.shared.fund_equity.store(
            eq.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            Ordering::Relaxed,
        );
        self.push(Reply {
            seq: self.next_seq - 1,
            origin: None,
            rid: 0,
            body: Body::Stats(rows),
        });
    }
}

/// The mark at which a pool holding one position of `size` at `mark` with this equity
/// and maintenance reaches maintenance, the maintenance rate held fixed:
/// `E + size·(p − m) = |size|·p·mm` with `mm = maint / (|size|·m)`, so
/// `p = (size·m − E)·m / (size·m − maint)`, rounded toward zero; 0 when there is none.
pub fn liquidation_price(size: i64, mark: i64, equity: i128, maint: i128) -> i64 {
    if size == 0 || mark <= 0 {
        return 0;
    }
    let sm = i128::from(size) * i128::from(mark);
    let den = sm - maint;
    if den == 0 {
        return 0;
    }
    let p = (sm - equity).checked_mul(i128::from(mark)).map(|n| n / den);
    p.filter(|&p| p > 0)
        .map_or(0, |p| p.min(i128::from(i64::MAX)) as i64)
}

#[cfg(test)]
mod tests {
    use super::liquidation_price;

    #[test]
    fn liquidation_price_by_hand() {
        // Long 10 lots at mark 100 with equity 200 and maintenance 50 (mm = 5%):
        // 200 + 10(p − 100) = 10·p·0.05 → 9.5p = 800 → p = 84.2 → 84.
        assert_eq!(liquidation_price(10, 100, 200, 50), 84);
        // Short 10 at 100, equity 200, maintenance 50: 200 − 10(p − 100) = 0.5p → p = 1200/10.5 = 114.28 → 114.
        assert_eq!(liquidation_price(-10, 100, 200, 50), 114);
        // No position, no mark, or equity so large there is no positive price.
        assert_eq!(liquidation_price(0, 100, 1, 1), 0);
        assert_eq!(liquidation_price(10, 0, 1, 1), 0);
        assert_eq!(liquidation_price(10, 100, 5_000, 50), 0);
    }
}
