//! A small driver for scenario tests: sequences commands and keeps the last events.

use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, Engine, EngineConfig, Event, EventKind,
    MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty, RejectReason, Side, StpMode,
};

/// One market (id 0, tick 1, prices 1..=1000, max qty 1000, 10% market band) and
/// accounts 0..=9 opened.
pub struct Harness {
    /// The engine under test.
    pub engine: Engine,
    /// Events of the last command.
    pub events: Vec<Event>,
    seq: u64,
    next_client: u64,
}

/// The default scenario market.
pub const MARKET: MarketConfig = MarketConfig {
    tick: 1,
    lot_base_atoms: 1,
    min_price: Price(1),
    max_price: Price(1000),
    max_qty: Qty(1000),
    market_band_bps: 1000,
    risk: None,
};

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A fresh engine with [`MARKET`] and ten open accounts.
    pub fn new() -> Harness {
        let mut h = Harness {
            engine: Engine::new(EngineConfig::default()),
            events: Vec::new(),
            seq: 0,
            next_client: 1,
        };
        h.run(CommandKind::AddMarket(Box::new(MARKET)));
        for a in 0..10 {
            h.run(CommandKind::OpenAccount(AccountId(a)));
        }
        h
    }

    /// Applies one command; its events replace `self.events`.
    pub fn run(&mut self, kind: CommandKind) -> &[Event] {
        self.seq += 1;
        step(&mut self.engine, self.seq, kind, &mut self.events);
        &self.events
    }

    /// Submits an order with a fresh client id; returns the assigned id if accepted.
    pub fn order(
        &mut self,
        account: u32,
        side: Side,
        order_type: OrderType,
        qty: i64,
        stp: StpMode,
    ) -> Option<OrderId> {
        self.next_client += 1;
        self.run(CommandKind::NewOrder(NewOrder {
            account: AccountId(account),
            market: MarketId(0),
            client_id: ClientOrderId(self.next_client),
            side,
            order_type,
            qty: Qty(qty),
            stp,
            reduce_only: false,
        }));
        self.events.iter().find_map(|e| match e.kind {
            EventKind::Accepted { order_id, .. } => Some(order_id),
            _ => None,
        })
    }

    /// A resting GTC limit order (cancel-aggressor STP).
    pub fn limit(&mut self, account: u32, side: Side, price: i64, qty: i64) -> OrderId {
        self.order(
            account,
            side,
            OrderType::Limit(Price(price)),
            qty,
            StpMode::CancelAggressor,
        )
        .expect("accepted")
    }

    /// `(maker order, price, qty)` of every fill in the last command.
    pub fn fills(&self) -> Vec<(OrderId, i64, i64)> {
        self.events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::Fill {
                    maker_order,
                    price,
                    qty,
                    ..
                } => Some((maker_order, price.0, qty.0)),
                _ => None,
            })
            .collect()
    }

    /// The rejection reason of the last command, if it was rejected.
    pub fn rejected(&self) -> Option<RejectReason> {
        cascade_core::rejection(&self.events)
    }

    /// Ids of the orders resting at `price` on `side`, oldest first.
    pub fn queue(&self, side: Side, price: i64) -> Vec<OrderId> {
        self.engine
            .level_orders(MarketId(0), side, Price(price))
            .map(|o| o.id)
            .collect()
    }
}

/// Money one command brought in from outside, read from its events: deposits minus
/// withdrawals, plus an accepted insurance-fund deposit. Summed over a log it is what
/// `Engine::money_accounted` must equal.
pub fn net_inflow(cmd: &Command, events: &[Event]) -> i128 {
    let fund = match cmd.kind {
        CommandKind::InsuranceDeposit { amount, .. }
            if cascade_core::rejection(events).is_none() =>
        {
            i128::from(amount)
        }
        _ => 0,
    };
    fund + events
        .iter()
        .map(|e| match e.kind {
            EventKind::Deposited { amount, .. } => i128::from(amount),
            EventKind::Withdrawn { amount, .. } => -i128::from(amount),
            _ => 0,
        })
        .sum::<i128>()
}

/// Applies one command with sequence `seq`; its events replace `events`; panics if an
/// engine invariant (`Engine::verify`) breaks.
pub fn step(engine: &mut Engine, seq: u64, kind: CommandKind, events: &mut Vec<Event>) {
    events.clear();
    engine.apply(
        &Command {
            seq,
            ts_ns: 0,
            kind,
        },
        events,
    );
    engine.verify().expect("engine invariants");
}
