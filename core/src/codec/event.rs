//! Decoding of [`Event::encode`]'s layout ([`crate::EVENT_ENCODING_VERSION`]): `seq`,
//! `index` (as `u64`), a tag, then the kind's fields as that function writes them (ids
//! as `u64`, `u64::MAX` for an absent market or fund; `Side` and `CancelReason` as
//! their declaration index; a rejection as its code, then its payload).

use super::{DecodeError, Reader};
use crate::event::{reject_code, CancelReason, Event, EventKind, RejectReason};
use crate::market::MarketConfigError as M;
use crate::risk::RiskConfigError as R;
use crate::types::{AccountId, ClientOrderId, MarketId, OrderId, Price, Qty};

/// Every rejection, each once: decoding looks a code up here (a test checks that the
/// codes are distinct and that each decodes to itself).
pub const REJECT_REASONS: [RejectReason; 47] = [
    RejectReason::UnknownMarket,
    RejectReason::UnknownAccount,
    RejectReason::UnknownOrder,
    RejectReason::AccountExists,
    RejectReason::TooManyMarkets,
    RejectReason::InvalidMarket(M::NonPositiveTickOrLot),
    RejectReason::InvalidMarket(M::BadPriceBand),
    RejectReason::InvalidMarket(M::TooManyLevels),
    RejectReason::InvalidMarket(M::BadMaxQty),
    RejectReason::InvalidMarket(M::BadMarketBand),
    RejectReason::InvalidMarket(M::Risk(R::BadLeverage)),
    RejectReason::InvalidMarket(M::Risk(R::BadTiers)),
    RejectReason::InvalidMarket(M::Risk(R::BadFees)),
    RejectReason::InvalidMarket(M::Risk(R::BadVolatility)),
    RejectReason::InvalidMarket(M::Risk(R::BadOpenInterest)),
    RejectReason::InvalidMarket(M::Risk(R::BadLiquidation)),
    RejectReason::MarketHalted,
    RejectReason::NonPositiveQty,
    RejectReason::QtyTooLarge,
    RejectReason::PriceOffTick,
    RejectReason::PriceOutOfBand,
    RejectReason::NoLiquidity,
    RejectReason::PostOnlyWouldTake,
    RejectReason::DuplicateClientId,
    RejectReason::OrderCapacity,
    RejectReason::AccountOrderCapacity,
    RejectReason::PositionCapacity,
    RejectReason::Overflow,
    RejectReason::NotLeveraged,
    RejectReason::NoMarkPrice,
    RejectReason::InsufficientMargin { shortfall: 0 },
    RejectReason::NonPositiveAmount,
    RejectReason::CollateralLimit,
    RejectReason::BadLeverage,
    RejectReason::PositionOrOrdersOpen,
    RejectReason::NotIsolated,
    RejectReason::ReduceOnlyWouldIncrease,
    RejectReason::OpenInterestCap,
    RejectReason::AccountOpenInterestCap,
    RejectReason::PositionLimit,
    RejectReason::BadOraclePrint,
    RejectReason::MarkOutOfBand,
    RejectReason::FundingRateTooLarge,
    RejectReason::WouldTriggerNow,
    RejectReason::ConditionalCapacity,
    RejectReason::NoIsolatedFund,
    RejectReason::FundingIndexLimit,
];

/// Every cancel reason, at the index that encodes it.
const CANCEL_REASONS: [CancelReason; 8] = [
    CancelReason::User,
    CancelReason::MassCancel,
    CancelReason::Unfilled,
    CancelReason::FillOrKill,
    CancelReason::SelfTrade,
    CancelReason::Liquidation,
    CancelReason::Margin,
    CancelReason::ReduceOnly,
];

impl Event {
    /// Decodes exactly one event: all of `bytes`, nothing else.
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let mut r = Reader::new(bytes);
        let event = Event {
            seq: r.u64()?,
            index: r.wide_u32()?,
            kind: read_kind(&mut r)?,
        };
        r.finish()?;
        Ok(event)
    }
}

fn account(r: &mut Reader) -> Result<AccountId, DecodeError> {
    Ok(AccountId(r.wide_u32()?))
}

fn market(r: &mut Reader) -> Result<MarketId, DecodeError> {
    Ok(MarketId(r.wide_u32()?))
}

fn opt_market(r: &mut Reader) -> Result<Option<MarketId>, DecodeError> {
    Ok(r.wide_opt_u32()?.map(MarketId))
}

fn order(r: &mut Reader) -> Result<OrderId, DecodeError> {
    Ok(OrderId(r.u64()?))
}

fn price(r: &mut Reader) -> Result<Price, DecodeError> {
    Ok(Price(r.i64()?))
}

fn qty(r: &mut Reader) -> Result<Qty, DecodeError> {
    Ok(Qty(r.i64()?))
}

fn cancel_reason(r: &mut Reader) -> Result<CancelReason, DecodeError> {
    Ok(CANCEL_REASONS[usize::from(r.tag(CANCEL_REASONS.len() as u8)?)])
}

fn reject(r: &mut Reader) -> Result<RejectReason, DecodeError> {
    let at = r.offset();
    let code = r.u64()?;
    let found = REJECT_REASONS
        .iter()
        .find(|&&x| reject_code(x) == code)
        .ok_or(DecodeError::BadTag { at, value: code })?;
    Ok(match found {
        RejectReason::InsufficientMargin { .. } => RejectReason::InsufficientMargin {
            shortfall: r.i64()?,
        },
        &other => other,
    })
}

fn read_kind(r: &mut Reader) -> Result<EventKind, DecodeError> {
    let at = r.offset();
    Ok(match r.u8()? {
        1 => EventKind::MarketAdded(market(r)?),
        2 => EventKind::MarketHalted(market(r)?),
        3 => EventKind::MarketResumed(market(r)?),
        4 => EventKind::AccountOpened(account(r)?),
        5 => EventKind::Rejected(reject(r)?),
        6 => EventKind::Accepted {
            order_id: order(r)?,
            account: account(r)?,
            client_id: ClientOrderId(r.u64()?),
            market: market(r)?,
            side: r.side()?,
            price: price(r)?,
            qty: qty(r)?,
        },
        7 => EventKind::Fill {
            market: market(r)?,
            maker_order: order(r)?,
            maker_account: account(r)?,
            taker_order: order(r)?,
            taker_account: account(r)?,
            taker_side: r.side()?,
            price: price(r)?,
            qty: qty(r)?,
            maker_fee: r.i64()?,
            taker_fee: r.i64()?,
            liquidation: r.bool()?,
        },
        8 => EventKind::Cancelled {
            order_id: order(r)?,
            account: account(r)?,
            qty: qty(r)?,
            remaining: qty(r)?,
            reason: cancel_reason(r)?,
        },
        9 => EventKind::Replaced {
            order_id: order(r)?,
            price: price(r)?,
            qty: qty(r)?,
            kept_priority: r.bool()?,
        },
        10 => EventKind::Level {
            market: market(r)?,
            side: r.side()?,
            price: price(r)?,
            qty: qty(r)?,
            orders: r.wide_u32()?,
        },
        11 => EventKind::Deposited {
            account: account(r)?,
            amount: r.i64()?,
            collateral: r.i128()?,
        },
        12 => EventKind::Withdrawn {
            account: account(r)?,
            amount: r.i64()?,
            collateral: r.i128()?,
        },
        13 => EventKind::LeverageSet {
            account: account(r)?,
            market: market(r)?,
            leverage: r.wide_u32()?,
        },
        14 => EventKind::MarginModeSet {
            account: account(r)?,
            market: market(r)?,
            isolated: r.bool()?,
        },
        15 => EventKind::IsolatedTransferred {
            account: account(r)?,
            market: market(r)?,
            amount: r.i64()?,
            bucket: r.i128()?,
        },
        16 => EventKind::MarkUpdated {
            market: market(r)?,
            price: price(r)?,
            scale_bits: r.i64()?,
        },
        17 => EventKind::FundingPaid {
            account: account(r)?,
            market: market(r)?,
            amount: r.i64()?,
        },
        18 => EventKind::PositionChanged {
            account: account(r)?,
            market: market(r)?,
            size: r.i64()?,
            cost: r.i128()?,
            realised: r.i64()?,
            funding: r.i64()?,
        },
        19 => EventKind::MarginCall {
            account: account(r)?,
            market: opt_market(r)?,
            equity: r.i128()?,
            maintenance: r.i128()?,
        },
        20 => EventKind::LiquidationStarted {
            account: account(r)?,
            market: opt_market(r)?,
            equity: r.i128()?,
            maintenance: r.i128()?,
        },
        21 => EventKind::LiquidationOrder {
            order_id: order(r)?,
            account: account(r)?,
            market: market(r)?,
            side: r.side()?,
            price: price(r)?,
            qty: qty(r)?,
        },
        22 => EventKind::Backstop {
            account: account(r)?,
            market: market(r)?,
            qty: qty(r)?,
            price: price(r)?,
        },
        23 => EventKind::AdlFill {
            market: market(r)?,
            account: account(r)?,
            counterparty: account(r)?,
            qty: qty(r)?,
            price: price(r)?,
        },
        24 => EventKind::LiquidationFinished {
            account: account(r)?,
            market: opt_market(r)?,
            fee: r.i64()?,
            equity: r.i128()?,
        },
        25 => EventKind::InsuranceFund {
            fund: opt_market(r)?,
            balance: r.i128()?,
            change: r.i128()?,
            equity: r.i128()?,
        },
        26 => EventKind::FundOrder {
            order_id: order(r)?,
            market: market(r)?,
            side: r.side()?,
            price: price(r)?,
            qty: qty(r)?,
        },
        27 => EventKind::BadDebt {
            account: account(r)?,
            market: opt_market(r)?,
            amount: r.i128()?,
            socialised: r.i128()?,
        },
        28 => EventKind::ConditionalAccepted {
            order_id: order(r)?,
            account: account(r)?,
            market: market(r)?,
            side: r.side()?,
            trigger: price(r)?,
            qty: qty(r)?,
        },
        29 => EventKind::ConditionalTriggered {
            order_id: order(r)?,
            account: account(r)?,
            market: market(r)?,
        },
        30 => EventKind::ConditionalRejected {
            order_id: order(r)?,
            reason: reject(r)?,
        },
        31 => EventKind::ConditionalCancelled {
            order_id: order(r)?,
            account: account(r)?,
            reason: cancel_reason(r)?,
        },
        32 => EventKind::FundingIndexed {
            market: market(r)?,
            delta: r.i128()?,
            index: r.i128()?,
        },
        t => {
            return Err(DecodeError::BadTag {
                at,
                value: u64::from(t),
            })
        }
    })
}
