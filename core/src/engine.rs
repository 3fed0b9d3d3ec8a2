//! The engine: applies commands to markets, accounts and the order pool, and emits events.
//!
//! Invariants (checked by [`Engine::verify`]): every live pool slot is linked exactly once
//! into its book level and once into its account's order list, and is indexed by its
//! order id and by `(account, client id)`; books are never crossed; order ids increase
//! strictly in acceptance order. After start-up (`AddMarket`), no command allocates.
//!
//! Each account holds at most `max_orders_per_account` resting orders: `AccountState::orders`
//! counts the slots linked into its list (checked by [`Engine::verify`]).
//!
//! Validation order for a new order (the first failing check is the reason reported):
//! market, account, halted, quantity sign, quantity bound, tick, band, client id,
//! market-order liquidity, post-only crossing, pool capacity, account order capacity,
//! level overflow, the risk checks (`margin.rs`), position capacity (leveraged markets,
//! `positions.rs`).
//!
//! Configuration bounds ([`EngineConfig::validate`]): every capacity is positive,
//! `max_orders ≤` [`MAX_ORDERS`], `max_accounts < u32::MAX`, `max_positions ≤`
//! [`MAX_POSITION_SLOTS`] and `liquidation_ring ≤` [`MAX_LIQUIDATION_RING`], so every
//! start-up allocation has a size that fits in `usize`.

use crate::book::Book;
use crate::command::{Command, CommandKind, NewOrder, OrderType, StpMode};
use crate::event::{CancelReason, Event, EventKind, EventSink, RejectReason};
use crate::idmap::{FixedMap, OrderIndex};
use crate::market::MarketConfig;
use crate::pool::{Order, Pool, NIL};
use crate::risk::Rate;

/// Entries the per-command queues (accounts to check) and the liquidation round's
/// scratch vectors hold before they grow (about 110 MB in all): one per account or
/// position would take gigabytes at 10^7 accounts; a command that queues more (a crash
/// liquidating over a million pools at once) grows a vector once, and the capacity
/// stays (`Engine::add_market`).
const ROUND_SCRATCH: usize = 1 << 20;

mod conditional;
mod fund;
mod funding;
mod liquidation;
mod margin;
mod order_margin;
mod positions;
mod reduce_only;
mod simulate;
mod snapshot;
mod state_hash;
mod trigger;
use crate::ring::Ring;
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty, Side};
pub use fund::FundView;
pub use margin::{AccountRisk, MarketRisk, PositionView};
pub use simulate::CascadeReport;
pub use snapshot::{SnapshotError, SNAPSHOT_MAGIC, SNAPSHOT_VERSION};

/// Most resting orders an engine may be configured for (slot numbers stay far from `NIL`).
pub const MAX_ORDERS: u32 = 1 << 31;

/// Most position slots an engine may be configured for (`max_positions`; slot numbers
/// stay far from `NIL`).
pub const MAX_POSITION_SLOTS: u64 = 1 << 31;

/// Largest liquidation ring an engine may be configured for.
pub const MAX_LIQUIDATION_RING: u32 = 1 << 24;

/// The default `hash_seed`: a fixed odd constant, public, so for tests and benchmarks only.
pub const DEFAULT_HASH_SEED: u64 = 0x2545_f491_4f6c_dd1d;

/// Capacities and the hash seed, fixed at start-up; nothing grows past the capacities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Most resting orders at once, across all markets (1 ..= [`MAX_ORDERS`]).
    pub max_orders: u32,
    /// Account ids must be below this (1 .. `u32::MAX`).
    pub max_accounts: u32,
    /// Most markets (at least 1).
    pub max_markets: u32,
    /// Most (account, market) pairs holding state at once: a position, resting orders,
    /// a leverage or isolated-mode setting (1 ..= [`MAX_POSITION_SLOTS`]). A command
    /// that would need one more is `PositionCapacity`.
    pub max_positions: u32,
    /// Most conditional (stop and take-profit) orders waiting at once (0 ..=
    /// [`MAX_ORDERS`]; 0 refuses them all with `ConditionalCapacity`). Their arena is
    /// allocated with the first leveraged market.
    pub max_conditionals: u32,
    /// Capacity of the liquidation ring (1 ..= [`MAX_LIQUIDATION_RING`]; never changes
    /// the output).
    pub liquidation_ring: u32,
    /// Most resting orders one account may hold at once, across all markets (at least
    /// 1): a new resting order beyond it is `AccountOrderCapacity`, so no single account
    /// can fill the shared pool. Set it to `max_orders` to turn the cap off.
    pub max_orders_per_account: u32,
    /// Key of the client-id table's hash (see `idmap`): it changes where keys sit in the
    /// table, never the event log, so runs stay deterministic. Choose a secret, random
    /// value per deployment; with a known seed a client can craft client ids that
    /// collide and slow every lookup.
    pub hash_seed: u64,
}

impl EngineConfig {
    /// The field names, in the order of [`EngineConfig::to_words`].
    pub const FIELDS: [&'static str; 8] = [
        "max_orders",
        "max_accounts",
        "max_markets",
        "max_positions",
        "max_conditionals",
        "liquidation_ring",
        "max_orders_per_account",
        "hash_seed",
    ];

    /// The fields as `u64`s, in [`EngineConfig::FIELDS`] order (snapshots and the
    /// capacities file store them so).
    pub fn to_words(&self) -> [u64; 8] {
        [
            u64::from(self.max_orders),
            u64::from(self.max_accounts),
            u64::from(self.max_markets),
            u64::from(self.max_positions),
            u64::from(self.max_conditionals),
            u64::from(self.liquidation_ring),
            u64::from(self.max_orders_per_account),
            self.hash_seed,
        ]
    }

    /// The inverse of [`EngineConfig::to_words`]; `Err(i)` names the first field that
    /// does not fit its `u32` (not validated otherwise).
    pub fn from_words(w: [u64; 8]) -> Result<EngineConfig, usize> {
        let n = |i: usize| u32::try_from(w[i]).map_err(|_| i);
        Ok(EngineConfig {
            max_orders: n(0)?,
            max_accounts: n(1)?,
            max_markets: n(2)?,
            max_positions: n(3)?,
            max_conditionals: n(4)?,
            liquidation_ring: n(5)?,
            max_orders_per_account: n(6)?,
            hash_seed: w[7],
        })
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_orders: 1 << 16,
            max_accounts: 1 << 12,
            max_markets: 16,
            max_positions: 1 << 16,
            max_conditionals: 1 << 14,
            liquidation_ring: 64,
            max_orders_per_account: 1024,
            hash_seed: DEFAULT_HASH_SEED,
        }
    }
}

/// Why an [`EngineConfig`] cannot build an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A capacity (`max_orders`, `max_accounts`, `max_markets`, `max_positions`,
    /// `liquidation_ring` or `max_orders_per_account`) is 0.
    ZeroCapacity,
    /// `max_orders` is above [`MAX_ORDERS`].
    TooManyOrders,
    /// `max_accounts` is `u32::MAX`.
    TooManyAccounts,
    /// `max_positions` is above [`MAX_POSITION_SLOTS`].
    TooManyPositions,
    /// `liquidation_ring` is above [`MAX_LIQUIDATION_RING`].
    RingTooLarge,
}

impl EngineConfig {
    /// Checks the bounds listed in the module invariants. The bounds keep every start-up
    /// size representable; they do not promise the host has the memory for it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_orders == 0
            || self.max_accounts == 0
            || self.max_markets == 0
            || self.max_positions == 0
            || self.liquidation_ring == 0
            || self.max_orders_per_account == 0
        {
            return Err(ConfigError::ZeroCapacity);
        }
        if self.max_orders > MAX_ORDERS || self.max_conditionals > MAX_ORDERS {
            return Err(ConfigError::TooManyOrders);
        }
        if self.max_accounts == u32::MAX {
            return Err(ConfigError::TooManyAccounts);
        }
        if u64::from(self.max_positions) > MAX_POSITION_SLOTS {
            return Err(ConfigError::TooManyPositions);
        }
        if self.liquidation_ring > MAX_LIQUIDATION_RING {
            return Err(ConfigError::RingTooLarge);
        }
        Ok(())
    }
}

/// One market's live state.
#[derive(Clone, Debug)]
struct MarketState {
    book: Book,
    halted: bool,
    /// Mark price (0 until the first `MarkPrice`).
    mark: i64,
    /// EWMA of absolute mark returns.
    ewma: Rate,
    /// Volatility margin scale applied to IM and MM.
    scale: Rate,
    /// The scale liquidation keys assume (≥ `scale`, ≤ the cap): ratcheted by
    /// `Engine::ratchet_key_scale`, which re-keys the market's holders when it moves.
    key_scale: Rate,
    /// Open interest: sum of long sizes (= sum of short sizes), lots.
    oi: i64,
    /// Collateral of the accounts holding a position here (cross balance or bucket).
    backing: i128,
    /// Liquidation trigger index (leveraged markets; buckets only with liquidation on).
    trigger: Option<trigger::TriggerIndex>,
    /// Order-margin trigger index, same shape: pools with resting orders.
    im_trigger: Option<trigger::TriggerIndex>,
    /// Signed size of the insurance fund's position (taken over by backstops).
    fund_size: i64,
    /// Cost basis of the insurance fund's position, booked at the mark when taken over.
    fund_cost: i128,
    /// Cash of the market's own insurance fund (`LiquidationConfig::isolated_fund`).
    fund_cash: i128,
    /// First position slot of the market's holder list (`positions.rs`).
    holders: u32,
    /// Funding index and ledger (`funding.rs`).
    funding: funding::FundingState,
}

/// One account's live state.
#[derive(Clone, Copy, Debug)]
struct AccountState {
    open: bool,
    head: u32,
    tail: u32,
    /// Cross-margin collateral, quote atoms.
    collateral: i128,
    /// Queued for the end-of-command liquidation check.
    queued: bool,
    /// Queued for the end-of-command order-margin check.
    im_queued: bool,
    /// The highest client id that has rested for this account: a higher one cannot be
    /// a duplicate, so the duplicate check skips the client-id table (clients usually
    /// number their orders upwards).
    client_id_high: u64,
    /// Resting orders linked into this account's list (at most `max_orders_per_account`).
    orders: u32,
    /// Of those, the reduce-only ones.
    reduce_only_orders: u32,
    /// Queued for the end-of-command reduce-only trim.
    ro_queued: bool,
    /// First slot of the account's position list, ascending market (`positions.rs`).
    positions: u32,
}

/// A read-only view of a resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderView {
    /// Engine id.
    pub id: OrderId,
    /// Client id.
    pub client_id: ClientOrderId,
    /// Owner.
    pub account: AccountId,
    /// Market.
    pub market: MarketId,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price,
    /// Remaining quantity.
    pub qty: Qty,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        OrderView {
            id: o.id,
            client_id: o.client_id,
            account: o.account,
            market: o.market,
            side: o.side,
            price: o.price,
            qty: o.qty,
        }
    }
}

/// Numbers the events of one command.
struct Out<'a, S: EventSink> {
    sink: &'a mut S,
    seq: u64,
    index: u32,
}

impl<S: EventSink> Out<'_, S> {
    fn emit(&mut self, kind: EventKind) {
        self.sink.emit(Event {
            seq: self.seq,
            index: self.index,
            kind,
        });
        self.index += 1;
    }
}

/// The incoming side of a match.
#[derive(Clone, Copy)]
struct Taker {
    id: OrderId,
    account: AccountId,
    side: Side,
    limit: Price,
    stp: StpMode,
    /// Whose order it is.
    kind: TakerKind,
}

/// Who sends an incoming order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TakerKind {
    /// An account's own order.
    Account,
    /// A liquidation order: pays only the maker's rebate, its fills are flagged.
    Liquidation,
    /// The insurance fund's unwind order: pays the taker fee, its fills are flagged.
    Fund,
}

/// How a match ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MatchEnd {
    /// Ran out of quantity or of crossing liquidity.
    Done(Qty),
    /// Self-trade prevention cancelled the aggressor with this remainder.
    StoppedBySelfTrade(Qty),
}

/// The deterministic matching engine.
#[derive(Clone, Debug)]
pub struct Engine {
    cfg: EngineConfig,
    /// Sequence of the last command applied (snapshots record it).
    last_seq: u64,
    markets: Vec<MarketState>,
    accounts: Vec<AccountState>,
    pool: Pool,
    by_id: OrderIndex,
    by_client: FixedMap<(u32, u64)>,
    next_order_id: u64,
    /// Position slots of the (account, market) pairs holding state.
    slots: positions::PositionArena,
    /// Fees collected net of rebates, plus the whole atoms of funding rounding dust.
    fee_ledger: i128,
    /// Funding rounding dust below one atom, 2^-32 atoms (`funding.rs`).
    funding_dust: i128,
    /// Insurance fund cash (its positions live in `MarketState::fund_size/fund_cost`).
    insurance: i128,
    /// Outstanding bad debt: losses written off and not socialised on the fee ledger.
    bad_debt: i128,
    /// Markets with liquidation parameters.
    liquidating_markets: u32,
    /// Markets with order margin on.
    order_margin_markets: u32,
    /// Trigger-index links, parallel to the position slots.
    links: Vec<trigger::Link>,
    /// Accounts to check for liquidation at the end of the command (or round).
    to_check: Vec<u32>,
    /// Order-margin links, parallel to the positions' extras (`positions.rs`).
    im_links: Vec<trigger::Link>,
    /// Accounts to re-key and check for order margin at the end of the command.
    im_check: Vec<u32>,
    /// Pools below maintenance margin in the current round.
    candidates: Vec<liquidation::Candidate>,
    /// The liquidation ring.
    ring: Ring<liquidation::Candidate>,
    /// The round's ADL rankings' entries: (rank, account, lots when ranked).
    adl_ranks: Vec<(Rate, u32, i64)>,
    /// Profitable entries of each ranking as (lots, index within it), largest first:
    /// the pro-rata weights.
    adl_sizes: Vec<(i64, u32)>,
    /// The round's rankings, one per (market, closing side) that saw ADL; their entries
    /// live in `adl_ranks` and `adl_sizes`, reserved at one entry per position slot (a
    /// position that flips side within a round can be ranked on both sides; the arena
    /// then grows once, the one allocation a cascade may make).
    adl_rankings: Vec<liquidation::AdlRanking>,
    /// Value traded by the current liquidation order.
    liquidated_value: i128,
    /// Markets where the insurance fund holds a position.
    fund_positions: u32,
    /// The fund's cash change accumulated over one unwind order or deleveraging.
    fund_cash_delta: i128,
    /// Scratch: a liquidated pool's positions as (maintenance margin, market), in the
    /// order the waterfall takes them.
    liq_order: Vec<(i128, u32)>,
    /// Scratch: the round's flat pools with negative money, as (account, pool).
    deficits: Vec<(u32, margin::PoolId)>,
    /// Waiting stop and take-profit orders.
    conditionals: conditional::Conditionals,
    /// Accounts whose position changed while they rest reduce-only orders.
    ro_check: Vec<u32>,
    /// Scratch of the reduce-only trim: quantity per (market, side), zero between uses.
    ro_totals: Vec<i64>,
}

impl Engine {
    /// An engine with every pool and index allocated up front.
    ///
    /// # Panics
    ///
    /// If `cfg` is invalid ([`EngineConfig::validate`]); [`Engine::try_new`] returns the
    /// error instead.
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine::try_new(cfg).expect("invalid engine configuration")
    }

    /// An engine with every pool and index allocated up front, or why `cfg` cannot
    /// build one.
    pub fn try_new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let mut markets = Vec::new();
        markets.reserve_exact(cfg.max_markets as usize);
        let slots = positions::PositionArena::with_capacity(cfg.max_positions, cfg.max_orders);
        let im_links = vec![trigger::Link::default(); slots.ext.len()];
        Ok(Engine {
            cfg,
            last_seq: 0,
            markets,
            accounts: vec![
                AccountState {
                    open: false,
                    head: NIL,
                    tail: NIL,
                    collateral: 0,
                    queued: false,
                    im_queued: false,
                    client_id_high: 0,
                    orders: 0,
                    reduce_only_orders: 0,
                    ro_queued: false,
                    positions: NIL,
                };
                cfg.max_accounts as usize
            ],
            pool: Pool::with_capacity(cfg.max_orders),
            by_id: OrderIndex::with_capacity(cfg.max_orders as usize, cfg.hash_seed),
            by_client: FixedMap::with_capacity(cfg.max_orders as usize, cfg.hash_seed),
            next_order_id: 1,
            slots,
            fee_ledger: 0,
            funding_dust: 0,
            insurance: 0,
            bad_debt: 0,
            liquidating_markets: 0,
            order_margin_markets: 0,
            links: Vec::new(),
            to_check: Vec::with_capacity((cfg.max_accounts as usize).min(ROUND_SCRATCH)),
            im_links,
            im_check: Vec::with_capacity((cfg.max_accounts as usize).min(ROUND_SCRATCH)),
            candidates: Vec::new(),
            ring: Ring::new(cfg.liquidation_ring as usize),
            adl_ranks: Vec::new(),
            adl_sizes: Vec::new(),
            adl_rankings: Vec::new(),
            liquidated_value: 0,
            fund_positions: 0,
            fund_cash_delta: 0,
            liq_order: Vec::new(),
            deficits: Vec::new(),
            conditionals: conditional::Conditionals::default(),
            ro_check: Vec::with_capacity((cfg.max_accounts as usize).min(ROUND_SCRATCH)),
            ro_totals: vec![0; 2 * cfg.max_markets as usize],
        })
    }

    /// The engine's capacities.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Applies one command, emitting its events to `sink`. Never panics on bad input.
    pub fn apply<S: EventSink>(&mut self, cmd: &Command, sink: &mut S) {
        self.last_seq = cmd.seq;
        let mut out = Out {
            sink,
            seq: cmd.seq,
            index: 0,
        };
        let accepted = match self.dispatch(&cmd.kind, &mut out) {
            Ok(()) => true,
            Err(reason) => {
                out.emit(EventKind::Rejected(reason));
                false
            }
        };
        // A rejected command changes nothing, so it leaves the fund's steps alone too.
        let fund_due = accepted && self.fund_positions > 0;
        if !self.to_check.is_empty() || !self.im_check.is_empty() || fund_due {
            self.resolve_liquidations(&mut out);
        }
        // Positions are final here; trimming changes orders only, before margin cancels.
        if !self.ro_check.is_empty() {
            self.trim_reduce_only(&mut out);
        }
        if !self.im_check.is_empty() {
            self.margin_cancels(&mut out);
        }
    }

    fn dispatch<S: EventSink>(
        &mut self,
        kind: &CommandKind,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        match *kind {
            CommandKind::AddMarket(ref cfg) => self.add_market(cfg, out),
            CommandKind::HaltMarket(m) => {
                self.market_mut(m)?.halted = true;
                out.emit(EventKind::MarketHalted(m));
                Ok(())
            }
            CommandKind::ResumeMarket(m) => {
                self.market_mut(m)?.halted = false;
                // Pools left below MM while the market was halted are found again as
                // after a mark move.
                if self.markets[m.0 as usize].mark > 0 {
                    self.mark_moved(m.0 as usize);
                }
                out.emit(EventKind::MarketResumed(m));
                self.fire_conditionals(m, out);
                Ok(())
            }
            CommandKind::OpenAccount(a) => {
                let acct = self
                    .accounts
                    .get_mut(a.0 as usize)
                    .ok_or(RejectReason::UnknownAccount)?;
                if acct.open {
                    return Err(RejectReason::AccountExists);
                }
                acct.open = true;
                out.emit(EventKind::AccountOpened(a));
                Ok(())
            }
            CommandKind::NewOrder(ref o) => self.new_order(o, out),
            CommandKind::Cancel { account, order_id } => {
                let slot = self.owned_slot(account, order_id)?;
                self.cancel_slot(slot, CancelReason::User, out);
                Ok(())
            }
            CommandKind::CancelByClientId { account, client_id } => {
                self.check_account(account)?;
                let slot = self
                    .by_client
                    .get((account.0, client_id.0), self.pool.client_key())
                    .ok_or(RejectReason::UnknownOrder)?;
                self.cancel_slot(slot, CancelReason::User, out);
                Ok(())
            }
            CommandKind::CancelReplace {
                account,
                order_id,
                price,
                qty,
            } => self.replace(account, order_id, price, qty, out),
            CommandKind::MassCancel { account, market } => {
                self.check_account(account)?;
                if let Some(m) = market {
                    self.market(m)?;
                }
                let mut slot = self.accounts[account.0 as usize].head;
                while slot != NIL {
                    let next = self.pool[slot].acct_next;
                    if market.is_none_or(|m| self.pool[slot].market == m) {
                        self.cancel_slot(slot, CancelReason::MassCancel, out);
                    }
                    slot = next;
                }
                self.cancel_conditionals_where(
                    account,
                    CancelReason::MassCancel,
                    |_, m| market.is_none_or(|x| x == m),
                    out,
                );
                Ok(())
            }
            CommandKind::NewConditional(ref o) => self.new_conditional(o, out),
            CommandKind::CancelConditional { account, order_id } => {
                self.cancel_conditional(account, order_id, out)
            }
            CommandKind::Deposit { .. }
            | CommandKind::Withdraw { .. }
            | CommandKind::SetLeverage { .. }
            | CommandKind::SetMarginMode { .. }
            | CommandKind::TransferIsolated { .. }
            | CommandKind::MarkPrice { .. }
            | CommandKind::FundingRate { .. }
            | CommandKind::InsuranceDeposit { .. } => self.risk_command(kind, out),
        }
    }

    fn add_market<S: EventSink>(
        &mut self,
        cfg: &MarketConfig,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        if self.markets.len() >= self.cfg.max_markets as usize {
            return Err(RejectReason::TooManyMarkets);
        }
        cfg.validate().map_err(RejectReason::InvalidMarket)?;
        let id = MarketId(self.markets.len() as u32);
        self.markets.push(MarketState {
            book: Book::new(*cfg),
            halted: false,
            mark: 0,
            ewma: Rate::ZERO,
            // 1 within the configured bounds until the second mark moves it.
            scale: cfg
                .risk
                .map_or(Rate::ONE, |r| Rate::ONE.clamp(r.vol_floor, r.vol_cap)),
            key_scale: cfg.risk.map_or(Rate::ONE, |r| {
                trigger::key_scale_for(&r, Rate::ONE.clamp(r.vol_floor, r.vol_cap))
            }),
            oi: 0,
            backing: 0,
            trigger: None,
            im_trigger: None,
            fund_size: 0,
            fund_cost: 0,
            fund_cash: 0,
            holders: NIL,
            funding: funding::FundingState::default(),
        });
        if let Some(r) = cfg.risk {
            let order_kappa = Rate::from_num(order_margin::ORDER_KAPPA);
            let mk = &mut self.markets[id.0 as usize];
            mk.trigger = Some(trigger::TriggerIndex::new(cfg, r.funding_kappa()));
            mk.im_trigger = Some(trigger::TriggerIndex::new(cfg, order_kappa));
        }
        if cfg.risk.is_some_and(|r| r.liquidation.is_some()) && self.liquidating_markets == 0 {
            // Allocated here, at start-up: the liquidation link of every position slot
            // and the liquidation scratch space.
            let n = self.slots.pos.len();
            self.links.resize(n, trigger::Link::default());
            // Round scratch, sized for a large round, not the largest possible one (a pool
            // per account, a ranking entry per position: gigabytes at 10^7 accounts): a
            // round beyond it grows the vector once, and the capacity stays.
            let pools = (self.cfg.max_accounts as usize * 2).min(ROUND_SCRATCH);
            self.candidates.reserve(pools);
            // A round ranks each (market, side) at most once, so each position slot
            // appears about once across its rankings (twice only if it flips side).
            let ranked = (self.cfg.max_positions as usize).min(ROUND_SCRATCH);
            self.adl_ranks.reserve(ranked);
            self.adl_sizes.reserve(ranked);
            self.adl_rankings.reserve(2 * self.cfg.max_markets as usize);
            self.liq_order.reserve(self.cfg.max_markets as usize);
            self.deficits
                .reserve((self.cfg.max_accounts as usize).min(ROUND_SCRATCH));
        }
        if let Some(l) = cfg.risk.and_then(|r| r.liquidation) {
            self.liquidating_markets += 1;
            self.order_margin_markets += u32::from(l.order_margin);
        }
        self.add_conditional_market(cfg);
        out.emit(EventKind::MarketAdded(id));
        Ok(())
    }

    fn market(&self, m: MarketId) -> Result<&MarketState, RejectReason> {
        self.markets
            .get(m.0 as usize)
            .ok_or(RejectReason::UnknownMarket)
    }

    fn market_mut(&mut self, m: MarketId) -> Result<&mut MarketState, RejectReason> {
        self.markets
            .get_mut(m.0 as usize)
            .ok_or(RejectReason::UnknownMarket)
    }

    fn check_account(&self, a: AccountId) -> Result<(), RejectReason> {
        match self.accounts.get(a.0 as usize) {
            Some(s) if s.open => Ok(()),
            _ => Err(RejectReason::UnknownAccount),
        }
    }

    fn owned_slot(&self, account: AccountId, id: OrderId) -> Result<u32, RejectReason> {
        self.check_account(account)?;
        match self.by_id.get(id.0, self.pool.order_id()) {
            Some(slot) if self.pool[slot].account == account => Ok(slot),
            _ => Err(RejectReason::UnknownOrder),
        }
    }

    /// Checks quantity and price against a market's configuration.
    fn check_qty_price(
        cfg: &MarketConfig,
        qty: Qty,
        price: Option<Price>,
    ) -> Result<(), RejectReason> {
        if qty.0 <= 0 {
            return Err(RejectReason::NonPositiveQty);
        }
        if qty > cfg.max_qty {
            return Err(RejectReason::QtyTooLarge);
        }
        if let Some(p) = price {
            if p.0 % cfg.tick != 0 {
                return Err(RejectReason::PriceOffTick);
            }
            if p < cfg.min_price || p > cfg.max_price {
                return Err(RejectReason::PriceOutOfBand);
            }
        }
        Ok(())
    }

    fn best_price(&self, m: MarketId, side: Side) -> Option<Price> {
        let book = &self.markets[m.0 as usize].book;
        book.best(side).map(|i| book.cfg.price_of(i))
    }

    /// Rejects if adding `qty` to the level at `price` (less `minus` already there) overflows.
    fn check_level_room(
        &self,
        m: MarketId,
        price: Price,
        minus: Qty,
        qty: Qty,
    ) -> Result<(), RejectReason> {
        let level = self.markets[m.0 as usize].book.level_at(price);
        (level.qty - minus.0)
            .checked_add(qty.0)
            .map(|_| ())
            .ok_or(RejectReason::Overflow)
    }

    fn new_order<S: EventSink>(
        &mut self,
        o: &NewOrder,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        let market = self.market(o.market)?;
        self.check_account(o.account)?;
        if market.halted {
            return Err(RejectReason::MarketHalted);
        }
        let cfg = &market.book.cfg; // a reference: the config is large (risk parameters)
        Self::check_qty_price(cfg, o.qty, o.order_type.limit())?;
        if o.client_id.0 <= self.accounts[o.account.0 as usize].client_id_high
            && self
                .by_client
                .get((o.account.0, o.client_id.0), self.pool.client_key())
                .is_some()
        {
            return Err(RejectReason::DuplicateClientId);
        }
        let best_opposite = self.best_price(o.market, o.side.opposite());
        let limit = match o.order_type {
            OrderType::Market => {
                cfg.market_limit(o.side, best_opposite.ok_or(RejectReason::NoLiquidity)?)
            }
            OrderType::PostOnly(p) if best_opposite.is_some_and(|b| o.side.crosses(p, b)) => {
                return Err(RejectReason::PostOnlyWouldTake)
            }
            OrderType::Limit(p)
            | OrderType::PostOnly(p)
            | OrderType::Ioc(p)
            | OrderType::Fok(p) => p,
        };
        if o.order_type.rests() {
            if self.pool.is_full() {
                return Err(RejectReason::OrderCapacity);
            }
            if self.accounts[o.account.0 as usize].orders >= self.cfg.max_orders_per_account {
                return Err(RejectReason::AccountOrderCapacity);
            }
            self.check_level_room(o.market, limit, Qty(0), o.qty)?;
        }
        self.check_new_order_risk(o, limit)?;
        if self.risk_of(o.market).is_some() {
            // A fill or a resting order gives the pair state: its slot is kept from here.
            self.reserve_position(o.account, o.market)?;
        }

        let id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        out.emit(EventKind::Accepted {
            order_id: id,
            account: o.account,
            client_id: o.client_id,
            market: o.market,
            side: o.side,
            price: limit,
            qty: o.qty,
        });
        let taker = Taker {
            id,
            account: o.account,
            side: o.side,
            limit,
            stp: o.stp,
            kind: TakerKind::Account,
        };
        if matches!(o.order_type, OrderType::Fok(_)) && !self.fok_fillable(o.market, taker, o.qty) {
            out.emit(cancelled(
                id,
                o.account,
                o.qty,
                Qty(0),
                CancelReason::FillOrKill,
            ));
            return Ok(());
        }
        match self.match_against_book(o.market, taker, o.qty, out) {
            MatchEnd::StoppedBySelfTrade(left) => {
                out.emit(cancelled(
                    id,
                    o.account,
                    left,
                    Qty(0),
                    CancelReason::SelfTrade,
                ));
            }
            MatchEnd::Done(left) if left.0 > 0 && o.order_type.rests() => {
                let order = Order {
                    id,
                    client_id: o.client_id,
                    account: o.account,
                    market: o.market,
                    side: o.side,
                    stp: o.stp,
                    post_only: matches!(o.order_type, OrderType::PostOnly(_)),
                    reduce_only: o.reduce_only,
                    price: limit,
                    qty: left,
                    ..Order::default()
                };
                // Capacity was checked before matching, and matching only frees slots.
                let slot = self
                    .pool
                    .alloc(order)
                    .expect("pool slot reserved before matching");
                self.by_id.insert(id.0, slot, self.pool.order_id());
                self.by_client
                    .insert((o.account.0, o.client_id.0), slot, self.pool.client_key());
                let high = &mut self.accounts[o.account.0 as usize].client_id_high;
                *high = (*high).max(o.client_id.0);
                self.link_account(slot);
                self.rest(slot, out);
            }
            MatchEnd::Done(left) if left.0 > 0 => {
                out.emit(cancelled(
                    id,
                    o.account,
                    left,
                    Qty(0),
                    CancelReason::Unfilled,
                ));
            }
            MatchEnd::Done(_) => {}
        }
        Ok(())
    }

    /// True if a fill-or-kill order can fill `qty` completely, given its self-trade mode:
    /// own orders it would cancel are skipped; own orders that would stop or decrement it
    /// make it unfillable.
    fn fok_fillable(&self, m: MarketId, t: Taker, qty: Qty) -> bool {
        let book = &self.markets[m.0 as usize].book;
        let side = t.side.opposite();
        let mut need = qty.0;
        let mut cur = book.best(side);
        while let Some(idx) = cur {
            if !t.side.crosses(t.limit, book.cfg.price_of(idx)) {
                return false;
            }
            let mut slot = book.level(idx).head;
            while slot != NIL {
                let maker = &self.pool[slot];
                if maker.account != t.account {
                    need -= maker.qty.0;
                    if need <= 0 {
                        return true;
                    }
                } else if t.stp != StpMode::CancelResting {
                    return false;
                }
                slot = maker.next;
            }
            cur = book.next_worse(side, idx);
        }
        false
    }

    /// Matches an incoming order against the opposite side in price-time priority.
    fn match_against_book<S: EventSink>(
        &mut self,
        m: MarketId,
        t: Taker,
        qty: Qty,
        out: &mut Out<S>,
    ) -> MatchEnd {
        let maker_side = t.side.opposite();
        let mut left = qty.0;
        while left > 0 {
            let book = &self.markets[m.0 as usize].book;
            let Some(idx) = book.best(maker_side) else {
                break;
            };
            let price = book.cfg.price_of(idx);
            if !t.side.crosses(t.limit, price) {
                break;
            }
            let mut slot = book.level(idx).head;
            let mut touched = false;
            let mut stopped = false;
            while slot != NIL && left > 0 {
                let mut maker = self.pool[slot];
                if maker.reduce_only && maker.account != t.account {
                    // A reduce-only maker trades no more than its position still needs:
                    // the excess is cancelled before the fill.
                    let keep = self.closable(maker.account, m, maker_side);
                    if keep < maker.qty.0 {
                        self.take_from_maker(slot, maker.qty.0 - keep);
                        out.emit(cancelled(
                            maker.id,
                            maker.account,
                            Qty(maker.qty.0 - keep),
                            Qty(keep),
                            CancelReason::ReduceOnly,
                        ));
                        touched = true;
                        if keep == 0 {
                            slot = maker.next;
                            continue;
                        }
                        maker.qty = Qty(keep);
                    }
                }
                if maker.account == t.account {
                    match t.stp {
                        StpMode::CancelAggressor => {
                            stopped = true;
                            break;
                        }
                        StpMode::CancelResting => {
                            self.remove_slot(slot);
                            out.emit(cancelled(
                                maker.id,
                                maker.account,
                                maker.qty,
                                Qty(0),
                                CancelReason::SelfTrade,
                            ));
                        }
                        StpMode::DecrementBoth => {
                            let d = maker.qty.0.min(left);
                            left -= d;
                            self.take_from_maker(slot, d);
                            let maker_left = Qty(maker.qty.0 - d);
                            out.emit(cancelled(
                                maker.id,
                                maker.account,
                                Qty(d),
                                maker_left,
                                CancelReason::SelfTrade,
                            ));
                            out.emit(cancelled(
                                t.id,
                                t.account,
                                Qty(d),
                                Qty(left),
                                CancelReason::SelfTrade,
                            ));
                        }
                    }
                } else {
                    let q = maker.qty.0.min(left);
                    left -= q;
                    let (maker_fee, mut taker_fee) = self.fees(m, price, q);
                    if t.kind == TakerKind::Liquidation {
                        // The liquidated side funds the maker's rebate, nothing more.
                        taker_fee = (-maker_fee).max(0);
                        self.liquidated_value += i128::from(price.0) * i128::from(q);
                    }
                    out.emit(EventKind::Fill {
                        market: m,
                        maker_order: maker.id,
                        maker_account: maker.account,
                        taker_order: t.id,
                        taker_account: t.account,
                        taker_side: t.side,
                        price,
                        qty: Qty(q),
                        maker_fee,
                        taker_fee,
                        liquidation: t.kind != TakerKind::Account,
                    });
                    self.take_from_maker(slot, q);
                    if self.markets[m.0 as usize].book.cfg.risk.is_some() {
                        self.settle(m, maker.account, maker_side, price, q, maker_fee, out);
                        if t.kind == TakerKind::Fund {
                            self.fund_fill(m, t.side, price, q, taker_fee);
                        } else {
                            self.settle(m, t.account, t.side, price, q, taker_fee, out);
                        }
                    }
                }
                touched = true;
                slot = maker.next;
            }
            if touched {
                self.emit_level(m, maker_side, price, out);
            }
            if stopped {
                return MatchEnd::StoppedBySelfTrade(Qty(left));
            }
        }
        MatchEnd::Done(Qty(left))
    }

    /// Removes `q` lots from a resting order, releasing it when nothing is left.
    fn take_from_maker(&mut self, slot: u32, q: i64) {
        if q == self.pool[slot].qty.0 {
            self.remove_slot(slot);
        } else {
            self.adjust_open(slot, -q);
            let m = self.pool[slot].market;
            self.markets[m.0 as usize]
                .book
                .reduce(&mut self.pool, slot, Qty(q));
        }
    }

    fn emit_level<S: EventSink>(&self, m: MarketId, side: Side, price: Price, out: &mut Out<S>) {
        let level = self.markets[m.0 as usize].book.level_at(price);
        out.emit(EventKind::Level {
            market: m,
            side,
            price,
            qty: Qty(level.qty),
            orders: level.count,
        });
    }

    /// Puts an allocated, account-linked order at the back of its level and reports the level.
    fn rest<S: EventSink>(&mut self, slot: u32, out: &mut Out<S>) {
        let o = self.pool[slot];
        self.markets[o.market.0 as usize]
            .book
            .push_back(&mut self.pool, slot);
        self.adjust_open(slot, o.qty.0);
        self.emit_level(o.market, o.side, o.price, out);
    }

    fn link_account(&mut self, slot: u32) {
        let acct = &mut self.accounts[self.pool[slot].account.0 as usize];
        self.pool[slot].acct_prev = acct.tail;
        self.pool[slot].acct_next = NIL;
        if acct.tail == NIL {
            acct.head = slot;
        } else {
            self.pool[acct.tail].acct_next = slot;
        }
        acct.tail = slot;
        // Cannot overflow: at most `max_orders_per_account` (a u32), checked in validation.
        acct.orders += 1;
        acct.reduce_only_orders += u32::from(self.pool[slot].reduce_only);
    }

    /// Forgets an order that is not linked into any level: indexes, account list, slot.
    fn forget_slot(&mut self, slot: u32) {
        let o = self.pool[slot];
        let acct = &mut self.accounts[o.account.0 as usize];
        acct.orders -= 1;
        acct.reduce_only_orders -= u32::from(o.reduce_only);
        if o.acct_prev == NIL {
            acct.head = o.acct_next;
        } else {
            self.pool[o.acct_prev].acct_next = o.acct_next;
        }
        if o.acct_next == NIL {
            acct.tail = o.acct_prev;
        } else {
            self.pool[o.acct_next].acct_prev = o.acct_prev;
        }
        self.by_id.remove(o.id.0, slot, self.pool.order_id());
        self.by_client
            .remove((o.account.0, o.client_id.0), self.pool.client_key());
        self.pool.release(slot);
    }

    /// Unlinks a resting order from its level and forgets it.
    fn remove_slot(&mut self, slot: u32) {
        self.adjust_open(slot, -self.pool[slot].qty.0);
        let m = self.pool[slot].market;
        self.markets[m.0 as usize].book.unlink(&mut self.pool, slot);
        self.forget_slot(slot);
    }

    fn cancel_slot<S: EventSink>(&mut self, slot: u32, reason: CancelReason, out: &mut Out<S>) {
        let o = self.pool[slot];
        self.remove_slot(slot);
        out.emit(cancelled(o.id, o.account, o.qty, Qty(0), reason));
        self.emit_level(o.market, o.side, o.price, out);
    }

    fn replace<S: EventSink>(
        &mut self,
        account: AccountId,
        order_id: OrderId,
        price: Price,
        qty: Qty,
        out: &mut Out<S>,
    ) -> Result<(), RejectReason> {
        let slot = self.owned_slot(account, order_id)?;
        let o = self.pool[slot];
        let market = &self.markets[o.market.0 as usize];
        if market.halted {
            return Err(RejectReason::MarketHalted);
        }
        Self::check_qty_price(&market.book.cfg, qty, Some(price))?;
        if price == o.price && qty <= o.qty {
            self.adjust_open(slot, qty.0 - o.qty.0);
            self.markets[o.market.0 as usize].book.reduce(
                &mut self.pool,
                slot,
                Qty(o.qty.0 - qty.0),
            );
            out.emit(EventKind::Replaced {
                order_id,
                price,
                qty,
                kept_priority: true,
            });
            if qty != o.qty {
                self.emit_level(o.market, o.side, price, out);
            }
            return Ok(());
        }
        let best_opposite = self.best_price(o.market, o.side.opposite());
        if o.post_only && best_opposite.is_some_and(|b| o.side.crosses(price, b)) {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        let same_level = if price == o.price { o.qty } else { Qty(0) };
        self.check_level_room(o.market, price, same_level, qty)?;
        if o.reduce_only {
            self.check_reduce_only(account, o.market, o.side, qty.0, Some(slot))?;
        } else {
            self.check_exposure(account, o.market, o.side, price, qty.0, o.qty.0)?;
        }

        out.emit(EventKind::Replaced {
            order_id,
            price,
            qty,
            kept_priority: false,
        });
        self.adjust_open(slot, -o.qty.0);
        self.markets[o.market.0 as usize]
            .book
            .unlink(&mut self.pool, slot);
        self.emit_level(o.market, o.side, o.price, out);
        let taker = Taker {
            id: order_id,
            account,
            side: o.side,
            limit: price,
            stp: o.stp,
            kind: TakerKind::Account,
        };
        match self.match_against_book(o.market, taker, qty, out) {
            MatchEnd::Done(left) if left.0 > 0 => {
                self.pool[slot].price = price;
                self.pool[slot].qty = left;
                self.rest(slot, out);
            }
            MatchEnd::Done(_) => self.forget_slot(slot),
            MatchEnd::StoppedBySelfTrade(left) => {
                self.forget_slot(slot);
                out.emit(cancelled(
                    order_id,
                    account,
                    left,
                    Qty(0),
                    CancelReason::SelfTrade,
                ));
            }
        }
        Ok(())
    }

    // ---- queries -------------------------------------------------------------------

    /// Number of markets.
    pub fn market_count(&self) -> usize {
        self.markets.len()
    }

    /// A market's configuration.
    pub fn market_config(&self, m: MarketId) -> Option<&MarketConfig> {
        self.markets.get(m.0 as usize).map(|s| &s.book.cfg)
    }

    /// Best price and total quantity on `side`.
    pub fn best(&self, m: MarketId, side: Side) -> Option<(Price, Qty)> {
        let book = &self.markets.get(m.0 as usize)?.book;
        book.best(side)
            .map(|i| (book.cfg.price_of(i), Qty(book.level(i).qty)))
    }

    /// Total quantity resting at `price` on `side` (0 if none, or the price is not admissible).
    pub fn level_qty(&self, m: MarketId, side: Side, price: Price) -> Qty {
        self.markets
            .get(m.0 as usize)
            .filter(|s| {
                s.book.cfg.admits_price(price)
                    && s.book.side_at(s.book.cfg.level_of(price)) == Some(side)
            })
            .map_or(Qty(0), |s| Qty(s.book.level_at(price).qty))
    }

    /// Visits up to `n` levels of `side` from the best: `(price, qty, orders)`.
    pub fn depth(&self, m: MarketId, side: Side, n: usize, f: impl FnMut(Price, Qty, u32)) {
        if let Some(s) = self.markets.get(m.0 as usize) {
            s.book.depth(side, n, f);
        }
    }

    /// The orders resting at `price` on `side`, oldest first.
    pub fn level_orders(
        &self,
        m: MarketId,
        side: Side,
        price: Price,
    ) -> impl Iterator<Item = OrderView> + '_ {
        let head = self
            .markets
            .get(m.0 as usize)
            .filter(|s| {
                s.book.cfg.admits_price(price)
                    && s.book.side_at(s.book.cfg.level_of(price)) == Some(side)
            })
            .map_or(NIL, |s| s.book.level_at(price).head);
        std::iter::successors((head != NIL).then_some(head), |&s| {
            let n = self.pool[s].next;
            (n != NIL).then_some(n)
        })
        .map(|s| OrderView::from(&self.pool[s]))
    }

    /// The resting orders of an account in one market, in acceptance order.
    pub fn level_orders_of(
        &self,
        a: AccountId,
        m: MarketId,
    ) -> impl Iterator<Item = OrderView> + '_ {
        let head = self.accounts.get(a.0 as usize).map_or(NIL, |s| s.head);
        std::iter::successors((head != NIL).then_some(head), |&s| {
            let n = self.pool[s].acct_next;
            (n != NIL).then_some(n)
        })
        .map(|s| OrderView::from(&self.pool[s]))
        .filter(move |o| o.market == m)
    }

    /// A resting order by its owner and client id.
    pub fn order_by_client(
        &self,
        account: AccountId,
        client_id: ClientOrderId,
    ) -> Option<OrderView> {
        self.by_client
            .get((account.0, client_id.0), self.pool.client_key())
            .map(|s| OrderView::from(&self.pool[s]))
    }

    /// A resting order by id.
    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        self.by_id
            .get(id.0, self.pool.order_id())
            .map(|s| OrderView::from(&self.pool[s]))
    }

    /// Number of resting orders.
    pub fn open_orders(&self) -> usize {
        self.pool.live()
    }

    /// Checks every structural invariant; returns the first violation found.
    pub fn verify(&self) -> Result<(), String> {
        self.verify_positions()?;
        self.verify_margin()?;
        self.verify_funding()?;
        self.verify_triggers()?;
        self.verify_order_index()?;
        self.verify_conditionals()?;
        self.verify_reduce_only()?;
        for (i, m) in self.markets.iter().enumerate() {
            m.book
                .verify(&self.pool)
                .map_err(|e| format!("market {i}: {e}"))?;
        }
        let mut linked = 0;
        for (a, acct) in self.accounts.iter().enumerate() {
            let (mut prev, mut slot) = (NIL, acct.head);
            let mut count = 0u32;
            while slot != NIL {
                let o = &self.pool[slot];
                if o.account.0 as usize != a || o.acct_prev != prev {
                    return Err(format!("account {a}: list broken at slot {slot}"));
                }
                if self.by_id.get(o.id.0, self.pool.order_id()) != Some(slot)
                    || self
                        .by_client
                        .get((o.account.0, o.client_id.0), self.pool.client_key())
                        != Some(slot)
                {
                    return Err(format!("order {:?} not indexed", o.id));
                }
                if o.client_id.0 > acct.client_id_high {
                    return Err(format!("order {:?}: client id above the watermark", o.id));
                }
                linked += 1;
                count += 1;
                prev = slot;
                slot = o.acct_next;
            }
            if prev != acct.tail {
                return Err(format!("account {a}: tail mismatch"));
            }
            if count != acct.orders || count > self.cfg.max_orders_per_account {
                return Err(format!(
                    "account {a}: {count} orders linked, {} counted, cap {}",
                    acct.orders, self.cfg.max_orders_per_account
                ));
            }
        }
        if linked != self.pool.live()
            || self.by_id.len() != linked
            || self.by_client.len() != linked
        {
            return Err(format!(
                "{linked} orders linked, {} live, {} by id, {} by client id",
                self.pool.live(),
                self.by_id.len(),
                self.by_client.len()
            ));
        }
        Ok(())
    }
}

fn cancelled(
    order_id: OrderId,
    account: AccountId,
    qty: Qty,
    remaining: Qty,
    reason: CancelReason,
) -> EventKind {
    EventKind::Cancelled {
        order_id,
        account,
        qty,
        remaining,
        reason,
    }
}
