//! FIX 4.4 application messages: turning NewOrderSingle, OrderCancelRequest,
//! OrderCancelReplaceRequest, OrderMassCancelRequest, OrderStatusRequest and
//! RequestForPositions into engine requests, and execution reports, cancel rejects,
//! mass-cancel reports and position reports back into FIX fields. Every tag and value
//! is listed in `docs/PROTOCOL.md`.
//!
//! Invariants: a message becomes a request only when every field it needs is present
//! and valid, so the engine never sees a guessed value; anything else gets a
//! session-level Reject naming the tag (SessionRejectReason 1, 5 or 6) or a
//! BusinessMessageReject; prices and quantities are exact decimals at the market's
//! precision.

// The refusal of a message is itself the answer to send (a Reject or a business
// reject), so parsers return `Result<AppIn, AppIn>`; it is not a hot path.
#![allow(clippy::result_large_err)]

use cascade_core::command::{ConditionalKind, ConditionalOrder, NewOrder, OrderType, StpMode};
use cascade_core::{
    AccountId, CancelReason, ClientOrderId, CommandKind, MarketId, OrderId, Price, Qty,
    RejectReason, Side,
};

use super::message::{parse_uint, FieldError, Message};
use super::session::BodyWriter;
use crate::config::{GatewayConfig, MarketSpec};
use crate::server::orders::{avg_px, Ctx, CxlWhy, Exec, ExecKind, FillKind, OrderInfo, Placer};
use crate::server::request::{Ask, PositionRow};
use crate::wire::{parse_scaled, DecimalError};

/// What an application message asks for.
#[derive(Debug)]
pub enum AppIn {
    /// Send this to the engine, remembering `ctx` for the answer.
    Request(Ask, Ctx, Pending),
    /// Answer with a session-level Reject.
    Reject(FieldError, &'static str),
    /// Answer with a BusinessMessageReject (reason 380, text).
    Business(u32, &'static str),
}

/// What the I/O thread must remember to word the answer.
#[derive(Clone, Debug)]
pub enum Pending {
    /// An order message; answered by execution reports.
    Order,
    /// A cancel (`true`) or replace (`false`) request: unknown orders get a cancel reject.
    CancelOrReplace(bool),
    /// A mass cancel: the request's ClOrdID and type.
    MassCancel(String, u8, Option<MarketId>),
    /// A status request: the ClOrdID and market it named (echoed if unknown).
    Status(u64, MarketId),
    /// Nothing to answer beyond execution reports (cancel-on-disconnect).
    Nothing,
    /// A position request: its PosReqID.
    Positions(String),
}

fn field(reason: u32, tag: u32) -> FieldError {
    FieldError {
        reason,
        tag: Some(tag),
    }
}

/// A numeric ClOrdID-like field (`tag`), required.
fn client_id(m: &Message<'_>, tag: u32) -> Result<u64, FieldError> {
    let v = m.req(tag)?;
    parse_uint(v).filter(|&n| n > 0).ok_or(field(6, tag))
}

fn market<'c>(
    cfg: &'c GatewayConfig,
    m: &Message<'_>,
) -> Result<(MarketId, &'c MarketSpec), AppIn> {
    let sym = m
        .text(55)
        .ok_or(AppIn::Reject(field(1, 55), "Symbol(55) required"))?;
    cfg.market_by_symbol(sym)
        .map(|(i, s)| (MarketId(i), s))
        .ok_or(AppIn::Business(2, "unknown Symbol"))
}

fn side(m: &Message<'_>) -> Result<Side, AppIn> {
    match m.get(54) {
        Some(b"1") => Ok(Side::Buy),
        Some(b"2") => Ok(Side::Sell),
        Some(_) => Err(AppIn::Reject(
            field(5, 54),
            "Side(54) must be 1 (buy) or 2 (sell)",
        )),
        None => Err(AppIn::Reject(field(1, 54), "Side(54) required")),
    }
}

fn decimal(m: &Message<'_>, tag: u32, decimals: u32, what: &'static str) -> Result<i64, AppIn> {
    let v = m.get(tag).ok_or(AppIn::Reject(field(1, tag), what))?;
    match parse_scaled(v, decimals) {
        Ok(x) => Ok(x),
        Err(DecimalError::Precision) => Err(AppIn::Reject(
            field(5, tag),
            "more decimals than the market's precision",
        )),
        Err(_) => Err(AppIn::Reject(field(6, tag), "not a decimal number")),
    }
}

fn check_account(m: &Message<'_>, account: AccountId) -> Result<(), AppIn> {
    match m.get(1) {
        None => Ok(()),
        Some(v) if parse_uint(v) == Some(u64::from(account.0)) => Ok(()),
        Some(_) => Err(AppIn::Business(
            0,
            "Account(1) is not this session's account",
        )),
    }
}

/// Parses an application message from a session acting for `account`.
pub fn parse(cfg: &GatewayConfig, m: &Message<'_>, account: AccountId) -> AppIn {
    let r = match m.msg_type() {
        b"D" => new_order(cfg, m, account),
        b"F" => cancel(m, account),
        b"G" => replace(cfg, m, account),
        b"q" => mass_cancel(cfg, m, account),
        b"H" => status(cfg, m, account),
        b"AN" => positions(m, account),
        _ => Err(AppIn::Business(3, "unsupported message type")),
    };
    r.unwrap_or_else(|e| e)
}

fn lift(e: FieldError) -> AppIn {
    AppIn::Reject(e, "ClOrdID must be a positive decimal integer below 10^18")
}

fn new_order(cfg: &GatewayConfig, m: &Message<'_>, account: AccountId) -> Result<AppIn, AppIn> {
    check_account(m, account)?;
    let cl = client_id(m, 11).map_err(lift)?;
    let (market, spec) = market(cfg, m)?;
    let side = side(m)?;
    let qty = decimal(m, 38, spec.qty_decimals, "OrderQty(38) required")?;
    let ord_type = m
        .get(40)
        .ok_or(AppIn::Reject(field(1, 40), "OrdType(40) required"))?;
    let inst = m.get(18).unwrap_or(b"");
    if !inst.iter().all(|c| b"6E ".contains(c)) {
        return Err(AppIn::Reject(
            field(5, 18),
            "ExecInst(18) supports 6 (post-only) and E (reduce-only)",
        ));
    }
    let (post_only, reduce_only) = (inst.contains(&b'6'), inst.contains(&b'E'));
    let stp = match m.get(8000) {
        None | Some(b"1") => StpMode::CancelResting,
        Some(b"2") => StpMode::CancelAggressor,
        Some(b"3") => StpMode::DecrementBoth,
        Some(_) => {
            return Err(AppIn::Reject(
                field(5, 8000),
                "SelfTradePrevention(8000) must be 1, 2 or 3",
            ))
        }
    };
    let tif = m.get(59).unwrap_or(b"1");
    let price = || {
        decimal(
            m,
            44,
            spec.price_decimals,
            "Price(44) required for this OrdType",
        )
    };
    let limit_type = |p: i64| -> Result<OrderType, AppIn> {
        match (tif, post_only) {
            (b"0" | b"1", false) => Ok(OrderType::Limit(Price(p))),
            (b"0" | b"1", true) => Ok(OrderType::PostOnly(Price(p))),
            (b"3", false) => Ok(OrderType::Ioc(Price(p))),
            (b"4", false) => Ok(OrderType::Fok(Price(p))),
            (b"3" | b"4", true) => Err(AppIn::Reject(
                field(5, 18),
                "post-only needs TimeInForce 1 (GTC)",
            )),
            _ => Err(AppIn::Reject(
                field(5, 59),
                "TimeInForce(59) must be 1 (GTC), 3 (IOC) or 4 (FOK)",
            )),
        }
    };
    let mut info = OrderInfo {
        account,
        market,
        side,
        client_id: cl,
        qty,
        cum: 0,
        notional: 0,
        price: 0,
        leaves: qty,
        placer: Placer::Client,
        stop: false,
    };
    let kind = match ord_type {
        b"1" => {
            if post_only {
                return Err(AppIn::Reject(field(5, 18), "post-only needs a limit order"));
            }
            order(
                account,
                market,
                cl,
                side,
                OrderType::Market,
                qty,
                stp,
                reduce_only,
            )
        }
        b"2" => {
            let p = price()?;
            info.price = p;
            order(
                account,
                market,
                cl,
                side,
                limit_type(p)?,
                qty,
                stp,
                reduce_only,
            )
        }
        b"3" | b"4" if post_only => {
            return Err(AppIn::Reject(field(5, 18), "post-only needs a limit order"));
        }
        b"3" | b"4" => {
            let trigger = decimal(
                m,
                99,
                spec.price_decimals,
                "StopPx(99) required for stop orders",
            )?;
            let limit = if ord_type == b"4" {
                Some(Price(price()?))
            } else {
                None
            };
            info.price = trigger;
            info.stop = true;
            CommandKind::NewConditional(ConditionalOrder {
                account,
                market,
                client_id: ClientOrderId(cl),
                side,
                qty: Qty(qty),
                trigger: Price(trigger),
                kind: ConditionalKind::Stop,
                limit,
                reduce_only,
                stp,
            })
        }
        _ => {
            return Err(AppIn::Reject(
                field(5, 40),
                "OrdType(40) must be 1, 2, 3 or 4",
            ))
        }
    };
    Ok(AppIn::Request(
        Ask::Command(kind),
        Ctx::New(info),
        Pending::Order,
    ))
}

#[allow(clippy::too_many_arguments)]
fn order(
    account: AccountId,
    market: MarketId,
    cl: u64,
    side: Side,
    order_type: OrderType,
    qty: i64,
    stp: StpMode,
    reduce_only: bool,
) -> CommandKind {
    CommandKind::NewOrder(NewOrder {
        account,
        market,
        client_id: ClientOrderId(cl),
        side,
        order_type,
        qty: Qty(qty),
        stp,
        reduce_only,
    })
}

fn cancel(m: &Message<'_>, account: AccountId) -> Result<AppIn, AppIn> {
    check_account(m, account)?;
    let cl = client_id(m, 11).map_err(lift)?;
    let orig = client_id(m, 41).map_err(lift)?;
    let ctx = Ctx::Cancel {
        account,
        client_id: cl,
        orig,
    };
    let ask = match m.get(37).and_then(parse_uint) {
        Some(id) => Ask::Command(CommandKind::Cancel {
            account,
            order_id: OrderId(id),
        }),
        None => Ask::CancelByClient {
            account,
            client_id: ClientOrderId(orig),
        },
    };
    Ok(AppIn::Request(ask, ctx, Pending::CancelOrReplace(true)))
}

fn replace(cfg: &GatewayConfig, m: &Message<'_>, account: AccountId) -> Result<AppIn, AppIn> {
    check_account(m, account)?;
    let cl = client_id(m, 11).map_err(lift)?;
    let orig = client_id(m, 41).map_err(lift)?;
    let (_, spec) = market(cfg, m)?;
    let qty = decimal(m, 38, spec.qty_decimals, "OrderQty(38) required")?;
    let price = decimal(m, 44, spec.price_decimals, "Price(44) required")?;
    if m.get(40).is_some_and(|t| t != b"2") {
        return Err(AppIn::Reject(
            field(5, 40),
            "only limit orders can be replaced (OrdType 2)",
        ));
    }
    let ask = Ask::ReplaceByClient {
        account,
        orig: ClientOrderId(orig),
        new_id: ClientOrderId(cl),
        price: Price(price),
        qty: Qty(qty),
    };
    Ok(AppIn::Request(
        ask,
        Ctx::Replace {
            account,
            client_id: cl,
            orig,
        },
        Pending::CancelOrReplace(false),
    ))
}

fn mass_cancel(cfg: &GatewayConfig, m: &Message<'_>, account: AccountId) -> Result<AppIn, AppIn> {
    check_account(m, account)?;
    let cl = m
        .text(11)
        .ok_or(AppIn::Reject(field(1, 11), "ClOrdID(11) required"))?
        .to_string();
    let (kind, market) = match m.get(530) {
        Some(b"7") => (7, None),
        Some(b"1") => (1, Some(market(cfg, m)?.0)),
        Some(_) => {
            return Err(AppIn::Reject(
                field(5, 530),
                "MassCancelRequestType(530) must be 1 or 7",
            ))
        }
        None => {
            return Err(AppIn::Reject(
                field(1, 530),
                "MassCancelRequestType(530) required",
            ))
        }
    };
    let ask = Ask::Command(CommandKind::MassCancel { account, market });
    Ok(AppIn::Request(
        ask,
        Ctx::Other,
        Pending::MassCancel(cl, kind, market),
    ))
}

fn status(cfg: &GatewayConfig, m: &Message<'_>, account: AccountId) -> Result<AppIn, AppIn> {
    check_account(m, account)?;
    let order_id = m.get(37).and_then(parse_uint).map(OrderId);
    let cl = m.get(11).and_then(parse_uint).map(ClientOrderId);
    if order_id.is_none() && cl.is_none() {
        return Err(AppIn::Reject(
            field(1, 11),
            "ClOrdID(11) or OrderID(37) required",
        ));
    }
    let ask = Ask::Status {
        account,
        client_id: cl,
        order_id,
    };
    let market = m
        .text(55)
        .and_then(|s| cfg.market_by_symbol(s))
        .map_or(MarketId(0), |(i, _)| MarketId(i));
    let echo = cl.map_or(0, |c| c.0);
    Ok(AppIn::Request(
        ask,
        Ctx::Other,
        Pending::Status(echo, market),
    ))
}

fn positions(m: &Message<'_>, account: AccountId) -> Result<AppIn, AppIn> {
    check_account(m, account)?;
    let id = m
        .text(710)
        .ok_or(AppIn::Reject(field(1, 710), "PosReqID(710) required"))?
        .to_string();
    if m.get(724).is_some_and(|t| t != b"0") {
        return Err(AppIn::Reject(
            field(5, 724),
            "PosReqType(724) must be 0 (positions)",
        ));
    }
    Ok(AppIn::Request(
        Ask::Positions { account },
        Ctx::Other,
        Pending::Positions(id),
    ))
}

/// OrdRejReason (103) and text for every core reject reason.
pub fn reject_reason(r: RejectReason) -> (u32, &'static str) {
    use RejectReason as R;
    match r {
        R::UnknownMarket => (1, "unknown market"),
        R::UnknownAccount => (15, "unknown account"),
        R::UnknownOrder => (5, "unknown order"),
        R::AccountExists => (99, "account exists"),
        R::TooManyMarkets => (99, "too many markets"),
        R::InvalidMarket(_) => (99, "invalid market configuration"),
        R::MarketHalted => (2, "market halted"),
        R::NonPositiveQty => (13, "quantity must be positive"),
        R::QtyTooLarge => (13, "quantity above the market's maximum"),
        R::PriceOffTick => (99, "price not on tick"),
        R::PriceOutOfBand => (99, "price outside the market's band"),
        R::NoLiquidity => (99, "no liquidity for a market order"),
        R::PostOnlyWouldTake => (99, "post-only order would take liquidity"),
        R::DuplicateClientId => (6, "duplicate ClOrdID among live orders"),
        R::OrderCapacity => (99, "engine order capacity reached"),
        R::AccountOrderCapacity => (3, "too many open orders for the account"),
        R::PositionCapacity => (99, "engine position capacity reached"),
        R::Overflow => (99, "arithmetic overflow"),
        R::NotLeveraged => (11, "market has no leverage"),
        R::NoMarkPrice => (99, "market has no mark price yet"),
        R::InsufficientMargin { .. } => (3, "insufficient margin"),
        R::NonPositiveAmount => (99, "amount must be positive"),
        R::CollateralLimit => (3, "collateral limit"),
        R::BadLeverage => (99, "leverage outside the market's range"),
        R::PositionOrOrdersOpen => (99, "position or orders open"),
        R::NotIsolated => (99, "position is not isolated"),
        R::ReduceOnlyWouldIncrease => (99, "reduce-only order would increase the position"),
        R::OpenInterestCap => (3, "market open-interest cap"),
        R::AccountOpenInterestCap => (3, "account open-interest cap"),
        R::PositionLimit => (3, "position limit"),
        R::BadOraclePrint => (99, "bad oracle print"),
        R::MarkOutOfBand => (99, "mark outside the market's band"),
        R::FundingRateTooLarge => (99, "funding rate too large"),
        R::WouldTriggerNow => (99, "stop would trigger immediately"),
        R::ConditionalCapacity => (99, "stop order capacity reached"),
        R::NoIsolatedFund => (99, "market has no insurance fund of its own"),
        R::FundingIndexLimit => (99, "funding index limit"),
    }
}

/// Text (58) for a cancel reason.
pub fn cancel_text(r: CancelReason) -> &'static str {
    match r {
        CancelReason::User => "canceled on request",
        CancelReason::MassCancel => "mass cancel",
        CancelReason::Unfilled => "unfilled remainder canceled (IOC or market)",
        CancelReason::FillOrKill => "fill-or-kill not fillable",
        CancelReason::SelfTrade => "self-trade prevention",
        CancelReason::Liquidation => "canceled by liquidation",
        CancelReason::Margin => "canceled: pool below initial margin",
        CancelReason::ReduceOnly => "reduce-only order would increase the position",
    }
}

/// Writes an ExecutionReport's body.
pub fn exec_report(b: &mut BodyWriter<'_>, e: &Exec, spec: &MarketSpec, exec_id: &str) {
    let o = &e.order;
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    let (exec_type, status) = match e.kind {
        ExecKind::New => ("0", if o.cum > 0 { "1" } else { "0" }),
        ExecKind::Trade => ("F", if o.leaves == 0 { "2" } else { "1" }),
        ExecKind::Cancelled(_) => ("4", "4"),
        ExecKind::Replaced => ("5", if o.cum > 0 { "1" } else { "0" }),
        ExecKind::Rejected(_) | ExecKind::GatewayRejected(_) => ("8", "8"),
        // FIX 4.4 has no "triggered" ExecType (5.0's L): a restatement, 58 says why.
        ExecKind::Triggered => ("D", "0"),
        ExecKind::Reduced(_) => ("D", if o.cum > 0 { "1" } else { "0" }),
        ExecKind::Status => ("I", if o.cum > 0 { "1" } else { "0" }),
    };
    b.int(37, e.order_id).int(11, o.client_id);
    if e.orig_client_id != 0 {
        b.int(41, e.orig_client_id);
    }
    b.str(17, exec_id).str(150, exec_type).str(39, status);
    b.int(1, o.account.0)
        .str(55, &spec.symbol)
        .str(54, if o.side == Side::Buy { "1" } else { "2" });
    b.scaled(38, o.qty, qd);
    if o.stop {
        b.scaled(99, o.price, pd);
    } else if o.price != 0 {
        b.scaled(44, o.price, pd);
    }
    let done = matches!(
        e.kind,
        ExecKind::Cancelled(_) | ExecKind::Rejected(_) | ExecKind::GatewayRejected(_)
    );
    b.scaled(151, if done { 0 } else { o.leaves }, qd);
    b.scaled(14, o.cum, qd).scaled(6, avg_px(o), pd);
    if e.kind == ExecKind::Trade {
        b.scaled(31, e.last_px, pd).scaled(32, e.last_qty, qd);
        b.int(12, e.fee).str(851, if e.maker { "1" } else { "2" });
        match e.fill {
            FillKind::Normal => {}
            FillKind::Liquidation => {
                b.str(8001, "L");
            }
            FillKind::Adl => {
                b.str(8001, "A");
            }
        }
    }
    match e.kind {
        ExecKind::Rejected(r) => {
            let (code, text) = reject_reason(r);
            b.int(103, code).str(58, text);
        }
        ExecKind::GatewayRejected(text) => {
            b.int(103, 99).str(58, text);
        }
        ExecKind::Cancelled(r) => {
            b.str(58, cancel_text(r));
        }
        ExecKind::Triggered => {
            b.int(378, 99).str(58, "stop triggered");
        }
        ExecKind::Reduced(r) => {
            b.int(378, 99).str(58, cancel_text(r));
        }
        _ => {}
    }
}

/// OrderCancelReject: 102 = 1 for an unknown order, 2 (exchange option) when
/// throttled, 99 with the engine's text otherwise.
pub fn cancel_reject(b: &mut BodyWriter<'_>, ctx: &Ctx, cancel: bool, why: CxlWhy) {
    let (cl, orig) = ctx.ids();
    b.str(37, "NONE")
        .int(11, cl)
        .int(41, orig)
        .str(39, "8")
        .str(434, if cancel { "1" } else { "2" });
    match why {
        CxlWhy::Unknown | CxlWhy::Engine(RejectReason::UnknownOrder) => {
            b.int(102, 1).str(58, "unknown order");
        }
        CxlWhy::Throttled => {
            b.int(102, 2)
                .str(58, "throttled: order rate above the session's soft limit");
        }
        CxlWhy::Engine(r) => {
            b.int(102, 99).str(58, reject_reason(r).1);
        }
    }
}

/// OrderMassCancelReport.
pub fn mass_cancel_report(
    b: &mut BodyWriter<'_>,
    cl: &str,
    kind: u8,
    affected: usize,
    rejected: Option<RejectReason>,
    symbol: Option<&str>,
) {
    b.str(11, cl).str(37, cl).int(530, kind);
    match rejected {
        None => {
            b.int(531, kind).int(533, affected);
        }
        Some(r) => {
            b.int(531, 0).int(532, 99).str(58, reject_reason(r).1);
        }
    }
    if let Some(s) = symbol {
        b.str(55, s);
    }
}

/// RequestForPositionsAck.
pub fn positions_ack(
    b: &mut BodyWriter<'_>,
    req: &str,
    report_id: &str,
    n: usize,
    account: AccountId,
) {
    b.str(721, report_id)
        .str(710, req)
        .int(727, n)
        .int(728, if n == 0 { 2 } else { 0 })
        .int(729, 0);
    b.int(1, account.0).int(581, 1);
}

/// One PositionReport.
pub fn position_report(
    b: &mut BodyWriter<'_>,
    req: &str,
    report_id: &str,
    row: &PositionRow,
    spec: &MarketSpec,
    account: AccountId,
) {
    let (pd, qd) = (spec.price_decimals, spec.qty_decimals);
    b.str(721, report_id)
        .str(710, req)
        .int(728, 0)
        .int(1, account.0)
        .int(581, 1);
    b.str(715, &super::time::format(super::time::now_ms())[..8]);
    b.str(55, &spec.symbol)
        .scaled(730, row.mark, pd)
        .int(731, 1)
        .scaled(734, row.mark, pd);
    b.int(702, 1).str(703, "TQ");
    b.scaled(704, row.size.max(0), qd)
        .scaled(705, (-row.size).max(0), qd);
    b.scaled(8010, row.entry, pd)
        .int(8011, row.upnl)
        .int(8012, row.initial)
        .int(8013, row.maintenance);
    b.int(8014, row.equity);
    if row.liquidation_price > 0 {
        b.scaled(8015, row.liquidation_price, pd);
    }
}

/// BusinessMessageReject.
pub fn business_reject(
    b: &mut BodyWriter<'_>,
    ref_seq: u64,
    msg_type: &[u8],
    reason: u32,
    text: &str,
    ref_id: Option<&[u8]>,
) {
    b.int(45, ref_seq)
        .raw(372, if msg_type.is_empty() { b"?" } else { msg_type });
    if let Some(id) = ref_id {
        b.raw(379, id);
    }
    b.int(380, reason).str(58, text);
}
