//! The command encoding, layout version 1 ([`super::COMMAND_ENCODING_VERSION`]).
//!
//! `seq: u64, ts_ns: u64, tag: u8`, then the kind's fields in declaration order. Ids of
//! accounts and markets are `u32`, order and client ids `u64`, prices, quantities and
//! amounts `i64`, rates their raw I32F32 bits as `i64`, flags one byte (0 or 1), and
//! enums one byte (`Side`: buy 0, sell 1; `StpMode`: cancel-resting 0, cancel-aggressor
//! 1, decrement-both 2; `ConditionalKind`: stop 0, take-profit 1; `AdlMode`: queue 0,
//! pro-rata 1). An `Option` is a flag byte followed by the value only when it is 1. An
//! order type is one byte (limit 0, IOC 1, FOK 2, post-only 3, market 4) followed by the
//! price unless it is a market order. A market config writes every one of the
//! `MAX_TIERS` tiers, used or not, so the decoded config equals the encoded one.
//!
//! Tags: 1 `AddMarket`, 2 `HaltMarket`, 3 `ResumeMarket`, 4 `OpenAccount`, 5 `NewOrder`,
//! 6 `Cancel`, 7 `CancelByClientId`, 8 `CancelReplace`, 9 `MassCancel`,
//! 10 `InsuranceDeposit`, 11 `Deposit`, 12 `Withdraw`, 13 `SetLeverage`,
//! 14 `SetMarginMode`, 15 `TransferIsolated`, 16 `MarkPrice`, 17 `FundingRate`,
//! 18 `NewConditional`, 19 `CancelConditional`.

use super::{DecodeError, Reader, Writer};
use crate::command::{
    Command, CommandKind, ConditionalKind, ConditionalOrder, NewOrder, OrderType,
};
use crate::market::MarketConfig;
use crate::risk::{AdlMode, LiquidationConfig, Rate, RiskConfig, Tier, MAX_TIERS};
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty};

/// Largest encoding of one command (an `AddMarket` with risk and liquidation).
/// Header 17, market 44 + flag 1, risk 4 + 16 × 8 tiers + 1 + 6 rates × 8 + 16 + flag 1,
/// liquidation 47.
pub const COMMAND_BYTES_MAX: usize = 17 + 45 + (4 + 16 * MAX_TIERS + 1 + 48 + 16 + 1) + 47;

impl Command {
    /// Appends the encoding (module docs) to `out`; returns its length.
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let mut w = Writer(out);
        w.u64(self.seq).u64(self.ts_ns);
        encode_kind(&self.kind, &mut w);
        out.len() - start
    }

    /// Decodes exactly one command: all of `bytes`, nothing else.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let mut r = Reader::new(bytes);
        let cmd = Command::read(&mut r)?;
        r.finish()?;
        Ok(cmd)
    }

    /// Decodes the command at the start of `bytes`; returns it and its length.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Command, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        let cmd = Command::read(&mut r)?;
        Ok((cmd, r.offset()))
    }

    fn read(r: &mut Reader) -> Result<Command, DecodeError> {
        Ok(Command {
            seq: r.u64()?,
            ts_ns: r.u64()?,
            kind: decode_kind(r)?,
        })
    }
}

fn encode_kind(kind: &CommandKind, w: &mut Writer) {
    match kind {
        CommandKind::AddMarket(cfg) => {
            market_config(w.u8(1), cfg);
            w
        }
        CommandKind::HaltMarket(m) => w.u8(2).u32(m.0),
        CommandKind::ResumeMarket(m) => w.u8(3).u32(m.0),
        CommandKind::OpenAccount(a) => w.u8(4).u32(a.0),
        CommandKind::NewOrder(o) => {
            new_order(w.u8(5), o);
            w
        }
        CommandKind::Cancel { account, order_id } => w.u8(6).u32(account.0).u64(order_id.0),
        CommandKind::CancelByClientId { account, client_id } => {
            w.u8(7).u32(account.0).u64(client_id.0)
        }
        CommandKind::CancelReplace {
            account,
            order_id,
            price,
            qty,
        } => w
            .u8(8)
            .u32(account.0)
            .u64(order_id.0)
            .i64(price.0)
            .i64(qty.0),
        CommandKind::MassCancel { account, market } => {
            opt_u32(w.u8(9).u32(account.0), market.map(|m| m.0))
        }
        CommandKind::InsuranceDeposit { market, amount } => {
            opt_u32(w.u8(10), market.map(|m| m.0)).i64(*amount)
        }
        CommandKind::Deposit { account, amount } => w.u8(11).u32(account.0).i64(*amount),
        CommandKind::Withdraw { account, amount } => w.u8(12).u32(account.0).i64(*amount),
        CommandKind::SetLeverage {
            account,
            market,
            leverage,
        } => w.u8(13).u32(account.0).u32(market.0).u32(*leverage),
        CommandKind::SetMarginMode {
            account,
            market,
            isolated,
        } => w.u8(14).u32(account.0).u32(market.0).bool(*isolated),
        CommandKind::TransferIsolated {
            account,
            market,
            amount,
        } => w.u8(15).u32(account.0).u32(market.0).i64(*amount),
        CommandKind::MarkPrice { market, price } => w.u8(16).u32(market.0).i64(price.0),
        CommandKind::FundingRate { market, rate } => w.u8(17).u32(market.0).i64(rate.to_bits()),
        CommandKind::NewConditional(c) => {
            conditional(w.u8(18), c);
            w
        }
        CommandKind::CancelConditional { account, order_id } => {
            w.u8(19).u32(account.0).u64(order_id.0)
        }
    };
}

fn decode_kind(r: &mut Reader) -> Result<CommandKind, DecodeError> {
    let at = r.offset();
    Ok(match r.u8()? {
        1 => CommandKind::AddMarket(Box::new(read_market_config(r)?)),
        2 => CommandKind::HaltMarket(MarketId(r.u32()?)),
        3 => CommandKind::ResumeMarket(MarketId(r.u32()?)),
        4 => CommandKind::OpenAccount(AccountId(r.u32()?)),
        5 => CommandKind::NewOrder(read_new_order(r)?),
        6 => CommandKind::Cancel {
            account: AccountId(r.u32()?),
            order_id: OrderId(r.u64()?),
        },
        7 => CommandKind::CancelByClientId {
            account: AccountId(r.u32()?),
            client_id: ClientOrderId(r.u64()?),
        },
        8 => CommandKind::CancelReplace {
            account: AccountId(r.u32()?),
            order_id: OrderId(r.u64()?),
            price: Price(r.i64()?),
            qty: Qty(r.i64()?),
        },
        9 => CommandKind::MassCancel {
            account: AccountId(r.u32()?),
            market: read_opt_u32(r)?.map(MarketId),
        },
        10 => CommandKind::InsuranceDeposit {
            market: read_opt_u32(r)?.map(MarketId),
            amount: r.i64()?,
        },
        11 => CommandKind::Deposit {
            account: AccountId(r.u32()?),
            amount: r.i64()?,
        },
        12 => CommandKind::Withdraw {
            account: AccountId(r.u32()?),
            amount: r.i64()?,
        },
        13 => CommandKind::SetLeverage {
            account: AccountId(r.u32()?),
            market: MarketId(r.u32()?),
            leverage: r.u32()?,
        },
        14 => CommandKind::SetMarginMode {
            account: AccountId(r.u32()?),
            market: MarketId(r.u32()?),
            isolated: r.bool()?,
        },
        15 => CommandKind::TransferIsolated {
            account: AccountId(r.u32()?),
            market: MarketId(r.u32()?),
            amount: r.i64()?,
        },
        16 => CommandKind::MarkPrice {
            market: MarketId(r.u32()?),
            price: Price(r.i64()?),
        },
        17 => CommandKind::FundingRate {
            market: MarketId(r.u32()?),
            rate: Rate::from_bits(r.i64()?),
        },
        18 => CommandKind::NewConditional(read_conditional(r)?),
        19 => CommandKind::CancelConditional {
            account: AccountId(r.u32()?),
            order_id: OrderId(r.u64()?),
        },
        t => {
            return Err(DecodeError::BadTag {
                at,
                value: u64::from(t),
            })
        }
    })
}

fn opt_u32<'w, 'v>(w: &'w mut Writer<'v>, v: Option<u32>) -> &'w mut Writer<'v> {
    match v {
        None => w.u8(0),
        Some(v) => w.u8(1).u32(v),
    }
}

fn read_opt_u32(r: &mut Reader) -> Result<Option<u32>, DecodeError> {
    Ok(if r.bool()? { Some(r.u32()?) } else { None })
}

fn rate<'w, 'v>(w: &'w mut Writer<'v>, v: Rate) -> &'w mut Writer<'v> {
    w.i64(v.to_bits())
}

fn read_rate(r: &mut Reader) -> Result<Rate, DecodeError> {
    Ok(Rate::from_bits(r.i64()?))
}

fn new_order(w: &mut Writer, o: &NewOrder) {
    w.u32(o.account.0)
        .u32(o.market.0)
        .u64(o.client_id.0)
        .side(o.side);
    match o.order_type {
        OrderType::Limit(p) => w.u8(0).i64(p.0),
        OrderType::Ioc(p) => w.u8(1).i64(p.0),
        OrderType::Fok(p) => w.u8(2).i64(p.0),
        OrderType::PostOnly(p) => w.u8(3).i64(p.0),
        OrderType::Market => w.u8(4),
    };
    w.i64(o.qty.0).stp(o.stp).bool(o.reduce_only);
}

fn read_new_order(r: &mut Reader) -> Result<NewOrder, DecodeError> {
    let (account, market, client_id) = (r.u32()?, r.u32()?, r.u64()?);
    let side = r.side()?;
    let order_type = match r.tag(5)? {
        0 => OrderType::Limit(Price(r.i64()?)),
        1 => OrderType::Ioc(Price(r.i64()?)),
        2 => OrderType::Fok(Price(r.i64()?)),
        3 => OrderType::PostOnly(Price(r.i64()?)),
        _ => OrderType::Market,
    };
    Ok(NewOrder {
        account: AccountId(account),
        market: MarketId(market),
        client_id: ClientOrderId(client_id),
        side,
        order_type,
        qty: Qty(r.i64()?),
        stp: r.stp()?,
        reduce_only: r.bool()?,
    })
}

fn conditional(w: &mut Writer, c: &ConditionalOrder) {
    w.u32(c.account.0)
        .u32(c.market.0)
        .u64(c.client_id.0)
        .side(c.side)
        .i64(c.qty.0)
        .i64(c.trigger.0)
        .u8(match c.kind {
            ConditionalKind::Stop => 0,
            ConditionalKind::TakeProfit => 1,
        });
    match c.limit {
        None => w.u8(0),
        Some(p) => w.u8(1).i64(p.0),
    };
    w.bool(c.reduce_only).stp(c.stp);
}

fn read_conditional(r: &mut Reader) -> Result<ConditionalOrder, DecodeError> {
    let (account, market, client_id) = (r.u32()?, r.u32()?, r.u64()?);
    Ok(ConditionalOrder {
        account: AccountId(account),
        market: MarketId(market),
        client_id: ClientOrderId(client_id),
        side: r.side()?,
        qty: Qty(r.i64()?),
        trigger: Price(r.i64()?),
        kind: if r.tag(2)? == 0 {
            ConditionalKind::Stop
        } else {
            ConditionalKind::TakeProfit
        },
        limit: if r.bool()? {
            Some(Price(r.i64()?))
        } else {
            None
        },
        reduce_only: r.bool()?,
        stp: r.stp()?,
    })
}

fn market_config(w: &mut Writer, c: &MarketConfig) {
    w.i64(c.tick)
        .i64(c.lot_base_atoms)
        .i64(c.min_price.0)
        .i64(c.max_price.0)
        .i64(c.max_qty.0)
        .u32(c.market_band_bps);
    match &c.risk {
        None => {
            w.u8(0);
        }
        Some(risk) => risk_config(w.u8(1), risk),
    }
}

fn read_market_config(r: &mut Reader) -> Result<MarketConfig, DecodeError> {
    Ok(MarketConfig {
        tick: r.i64()?,
        lot_base_atoms: r.i64()?,
        min_price: Price(r.i64()?),
        max_price: Price(r.i64()?),
        max_qty: Qty(r.i64()?),
        market_band_bps: r.u32()?,
        risk: if r.bool()? {
            Some(read_risk_config(r)?)
        } else {
            None
        },
    })
}

fn risk_config(w: &mut Writer, c: &RiskConfig) {
    w.u32(c.max_leverage);
    for t in &c.tiers {
        rate(w.i64(t.max_notional), t.mm_rate);
    }
    w.u8(c.tier_count);
    for v in [
        c.maker_fee,
        c.taker_fee,
        c.vol_lambda,
        c.vol_k,
        c.vol_floor,
        c.vol_cap,
    ] {
        rate(w, v);
    }
    w.i64(c.oi_cap)
        .u32(c.account_oi_share_bps)
        .u32(c.max_mark_move_bps);
    match &c.liquidation {
        None => {
            w.u8(0);
        }
        Some(l) => liquidation_config(w.u8(1), l),
    }
}

fn read_risk_config(r: &mut Reader) -> Result<RiskConfig, DecodeError> {
    let max_leverage = r.u32()?;
    let mut tiers = [Tier::default(); MAX_TIERS];
    for t in &mut tiers {
        t.max_notional = r.i64()?;
        t.mm_rate = read_rate(r)?;
    }
    Ok(RiskConfig {
        max_leverage,
        tiers,
        tier_count: r.u8()?,
        maker_fee: read_rate(r)?,
        taker_fee: read_rate(r)?,
        vol_lambda: read_rate(r)?,
        vol_k: read_rate(r)?,
        vol_floor: read_rate(r)?,
        vol_cap: read_rate(r)?,
        oi_cap: r.i64()?,
        account_oi_share_bps: r.u32()?,
        max_mark_move_bps: r.u32()?,
        liquidation: if r.bool()? {
            Some(read_liquidation_config(r)?)
        } else {
            None
        },
    })
}

fn liquidation_config(w: &mut Writer, l: &LiquidationConfig) {
    rate(w, l.buffer).i64(l.min_notional).u32(l.band_bps);
    rate(w, l.fee_rate).u8(match l.adl {
        AdlMode::Queue => 0,
        AdlMode::ProRata => 1,
    });
    w.bool(l.order_margin);
    rate(w, l.fund_haircut);
    rate(w, l.unwind_rate).bool(l.isolated_fund);
}

fn read_liquidation_config(r: &mut Reader) -> Result<LiquidationConfig, DecodeError> {
    Ok(LiquidationConfig {
        buffer: read_rate(r)?,
        min_notional: r.i64()?,
        band_bps: r.u32()?,
        fee_rate: read_rate(r)?,
        adl: if r.tag(2)? == 0 {
            AdlMode::Queue
        } else {
            AdlMode::ProRata
        },
        order_margin: r.bool()?,
        fund_haircut: read_rate(r)?,
        unwind_rate: read_rate(r)?,
        isolated_fund: r.bool()?,
    })
}
