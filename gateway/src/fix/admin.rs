//! Admin messages, accepted only on the admin user's session: user-defined MsgType
//! `U1` (AdminRequest) with AdminCommand (8100) and its value (8101), answered by `U2`
//! (AdminAck) once the command is durable.
//!
//! Invariant: an admin request becomes exactly one engine command or a
//! BusinessMessageReject; values are parsed exactly as for orders.

use cascade_core::{AccountId, CommandKind, MarketId, Price, RejectReason};

use super::message::{parse_uint, Message};
use super::session::BodyWriter;
use crate::config::GatewayConfig;
use crate::wire::parse_scaled;

/// Parses an admin request; `Err` holds BusinessRejectReason (380) and text.
pub fn parse(cfg: &GatewayConfig, m: &Message<'_>) -> Result<CommandKind, (u32, &'static str)> {
    if m.msg_type() != b"U1" {
        return Err((3, "the admin session accepts only AdminRequest (U1)"));
    }
    let market = || -> Result<(MarketId, u32), (u32, &'static str)> {
        let sym = m.text(55).ok_or((5, "Symbol(55) required"))?;
        cfg.market_by_symbol(sym)
            .map(|(i, s)| (MarketId(i), s.price_decimals))
            .ok_or((2, "unknown Symbol"))
    };
    let value = || m.get(8101).ok_or((5, "Value(8101) required"));
    let amount = || -> Result<i64, (u32, &'static str)> {
        parse_scaled(value()?, 0).map_err(|_| (0, "Value(8101) must be an integer number of atoms"))
    };
    let account = || -> Result<AccountId, (u32, &'static str)> {
        m.get(1)
            .and_then(parse_uint)
            .and_then(|a| u32::try_from(a).ok())
            .map(AccountId)
            .ok_or((5, "Account(1) required"))
    };
    Ok(match m.get(8100).ok_or((5, "AdminCommand(8100) required"))? {
        b"MARK" => {
            let (market, d) = market()?;
            let p = parse_scaled(value()?, d).map_err(|_| (0, "Value(8101) is not a price at the market's precision"))?;
            CommandKind::MarkPrice { market, price: Price(p) }
        }
        b"FUNDING" => {
            let (market, _) = market()?;
            let bp = parse_scaled(value()?, 0).map_err(|_| (0, "Value(8101) must be a funding rate in whole bps"))?;
            CommandKind::FundingRate { market, rate: cascade_core::risk::bps(bp) }
        }
        b"HALT" => CommandKind::HaltMarket(market()?.0),
        b"RESUME" => CommandKind::ResumeMarket(market()?.0),
        b"DEPOSIT" => CommandKind::Deposit { account: account()?, amount: amount()? },
        b"OPEN" => CommandKind::OpenAccount(account()?),
        b"INSURANCE" => {
            let market = if m.get(55).is_some() { Some(market()?.0) } else { None };
            CommandKind::InsuranceDeposit { market, amount: amount()? }
        }
        _ => return Err((0, "AdminCommand(8100) must be MARK, FUNDING, HALT, RESUME, DEPOSIT, OPEN or INSURANCE")),
    })
}

/// AdminAck (U2): the command's sequence number and result.
pub fn ack(b: &mut BodyWriter<'_>, seq: u64, rejected: Option<RejectReason>) {
    b.int(8102, seq);
    match rejected {
        None => {
            b.str(8103, "0");
        }
        Some(r) => {
            b.str(8103, "1").str(58, super::app::reject_reason(r).1);
        }
    }
}
