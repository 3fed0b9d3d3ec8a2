//! Command logs for people: one command per line of comma-separated text, convertible
//! to and from the journal without loss.
//!
//! Format: the first line is the header `seq,ts_ns,command,fields`; lines starting with
//! `#` are comments (`# engine: key=value ...` carries the engine capacities, as in
//! `engine.toml`). Every other line is `seq,ts_ns,command` followed by `name=value`
//! fields in any order, each kind's fields exactly once. Commands and their fields:
//!
//! | command | fields |
//! |---|---|
//! | `add_market` | `tick lot_base_atoms min_price max_price max_qty market_band_bps`; leveraged: `max_leverage tiers tier_count maker_fee taker_fee vol_lambda vol_k vol_floor vol_cap oi_cap account_oi_share_bps max_mark_move_bps`; with liquidation: `buffer min_notional band_bps fee_rate adl order_margin fund_haircut unwind_rate isolated_fund` |
//! | `halt_market`, `resume_market`, `mark_price`, `funding_rate` | `market`; `mark_price`: `price`; `funding_rate`: `rate` |
//! | `open_account`, `deposit`, `withdraw` | `account`; `deposit`/`withdraw`: `amount` |
//! | `new_order` | `account market client_id side type price qty stp reduce_only` (no `price` for `type=market`) |
//! | `cancel`, `cancel_conditional` | `account order_id` |
//! | `cancel_by_client_id` | `account client_id` |
//! | `cancel_replace` | `account order_id price qty` |
//! | `mass_cancel` | `account`, optional `market` (absent: every market) |
//! | `insurance_deposit` | optional `market` (absent: the shared fund), `amount` |
//! | `set_leverage` | `account market leverage` |
//! | `set_margin_mode` | `account market isolated` |
//! | `transfer_isolated` | `account market amount` |
//! | `new_conditional` | `account market client_id side qty trigger kind`, optional `limit`, `reduce_only stp` |
//!
//! Values: integers in decimal; `side` `buy`/`sell`; `type` `limit`/`ioc`/`fok`/
//! `post_only`/`market`; `stp` `cancel_resting`/`cancel_aggressor`/`decrement_both`;
//! `kind` `stop`/`take_profit`; `adl` `queue`/`pro_rata`; flags `true`/`false`; rates
//! as decimals (`0.0005`; a decimal that is not exactly an I32F32 value reads as the
//! nearest one), written as their exact decimal value (up to 32 fractional digits), so
//! they read back to the same bits; `tiers` as all eight `max_notional:mm_rate` pairs joined by `/`. An
//! error names the line and the column (1-based field number).

use cascade_core::risk::{AdlMode, LiquidationConfig, Rate, RiskConfig, Tier, MAX_TIERS};
use cascade_core::{
    AccountId, ClientOrderId, Command, CommandKind, ConditionalKind, ConditionalOrder,
    MarketConfig, MarketId, NewOrder, OrderId, OrderType, Price, Qty, Side, StpMode,
};
use std::fmt::{self, Write as _};
use std::str::FromStr;

/// The header line.
pub const HEADER: &str = "seq,ts_ns,command,fields";

/// A line that is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based field number (0: the line as a whole).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TextError {}

/// Appends `cmd` as one line (with its newline).
pub fn write_line(cmd: &Command, out: &mut String) {
    let mut w = Line { out };
    let _ = write!(w.out, "{},{},", cmd.seq, cmd.ts_ns);
    match &cmd.kind {
        CommandKind::AddMarket(c) => {
            write_market(&mut w, c);
            &mut w
        }
        CommandKind::HaltMarket(m) => w.name("halt_market").f("market", m.0),
        CommandKind::ResumeMarket(m) => w.name("resume_market").f("market", m.0),
        CommandKind::OpenAccount(a) => w.name("open_account").f("account", a.0),
        CommandKind::NewOrder(o) => {
            write_order(&mut w, o);
            &mut w
        }
        CommandKind::Cancel { account, order_id } => w
            .name("cancel")
            .f("account", account.0)
            .f("order_id", order_id.0),
        CommandKind::CancelByClientId { account, client_id } => w
            .name("cancel_by_client_id")
            .f("account", account.0)
            .f("client_id", client_id.0),
        CommandKind::CancelReplace {
            account,
            order_id,
            price,
            qty,
        } => w
            .name("cancel_replace")
            .f("account", account.0)
            .f("order_id", order_id.0)
            .f("price", price.0)
            .f("qty", qty.0),
        CommandKind::MassCancel { account, market } => {
            w.name("mass_cancel").f("account", account.0);
            if let Some(m) = market {
                w.f("market", m.0);
            }
            &mut w
        }
        CommandKind::InsuranceDeposit { market, amount } => {
            w.name("insurance_deposit");
            if let Some(m) = market {
                w.f("market", m.0);
            }
            w.f("amount", amount)
        }
        CommandKind::Deposit { account, amount } => w
            .name("deposit")
            .f("account", account.0)
            .f("amount", amount),
        CommandKind::Withdraw { account, amount } => w
            .name("withdraw")
            .f("account", account.0)
            .f("amount", amount),
        CommandKind::SetLeverage {
            account,
            market,
            leverage,
        } => w
            .name("set_leverage")
            .f("account", account.0)
            .f("market", market.0)
            .f("leverage", leverage),
        CommandKind::SetMarginMode {
            account,
            market,
            isolated,
        } => w
            .name("set_margin_mode")
            .f("account", account.0)
            .f("market", market.0)
            .f("isolated", isolated),
        CommandKind::TransferIsolated {
            account,
            market,
            amount,
        } => w
            .name("transfer_isolated")
            .f("account", account.0)
            .f("market", market.0)
            .f("amount", amount),
        CommandKind::MarkPrice { market, price } => w
            .name("mark_price")
            .f("market", market.0)
            .f("price", price.0),
        CommandKind::FundingRate { market, rate } => w
            .name("funding_rate")
            .f("market", market.0)
            .f("rate", RateText(*rate)),
        CommandKind::NewConditional(c) => {
            write_conditional(&mut w, c);
            &mut w
        }
        CommandKind::CancelConditional { account, order_id } => w
            .name("cancel_conditional")
            .f("account", account.0)
            .f("order_id", order_id.0),
    };
    w.out.push('\n');
}

/// Writes fields of one line.
struct Line<'a> {
    out: &'a mut String,
}

impl Line<'_> {
    fn name(&mut self, n: &str) -> &mut Self {
        self.out.push_str(n);
        self
    }
    fn f(&mut self, k: &str, v: impl fmt::Display) -> &mut Self {
        let _ = write!(self.out, ",{k}={v}");
        self
    }
}

/// `r` as its exact decimal value (at most 32 fractional digits, trailing zeros
/// dropped): it reads back to the same bits. (`Rate`'s own `Display` prints a shorter
/// decimal that can read back one unit off: 0x1999_9999 prints as `0.1`.)
pub fn rate_text(r: Rate) -> String {
    let bits = i128::from(r.to_bits());
    let (sign, a) = if bits < 0 { ("-", -bits) } else { ("", bits) };
    let (int, frac) = (a >> 32, a & 0xffff_ffff);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    // frac / 2^32 = frac × 5^32 / 10^32: 32 exact decimal digits.
    let digits = format!("{:032}", frac * 5i128.pow(32));
    format!("{sign}{int}.{}", digits.trim_end_matches('0'))
}

/// A rate field's text.
struct RateText(Rate);

impl fmt::Display for RateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rate_text(self.0))
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn stp_name(s: StpMode) -> &'static str {
    match s {
        StpMode::CancelResting => "cancel_resting",
        StpMode::CancelAggressor => "cancel_aggressor",
        StpMode::DecrementBoth => "decrement_both",
    }
}

fn write_order(w: &mut Line, o: &NewOrder) {
    w.name("new_order")
        .f("account", o.account.0)
        .f("market", o.market.0)
        .f("client_id", o.client_id.0)
        .f("side", side_name(o.side));
    let (t, p) = match o.order_type {
        OrderType::Limit(p) => ("limit", Some(p)),
        OrderType::Ioc(p) => ("ioc", Some(p)),
        OrderType::Fok(p) => ("fok", Some(p)),
        OrderType::PostOnly(p) => ("post_only", Some(p)),
        OrderType::Market => ("market", None),
    };
    w.f("type", t);
    if let Some(p) = p {
        w.f("price", p.0);
    }
    w.f("qty", o.qty.0)
        .f("stp", stp_name(o.stp))
        .f("reduce_only", o.reduce_only);
}

fn write_conditional(w: &mut Line, c: &ConditionalOrder) {
    w.name("new_conditional")
        .f("account", c.account.0)
        .f("market", c.market.0)
        .f("client_id", c.client_id.0)
        .f("side", side_name(c.side))
        .f("qty", c.qty.0)
        .f("trigger", c.trigger.0)
        .f(
            "kind",
            match c.kind {
                ConditionalKind::Stop => "stop",
                ConditionalKind::TakeProfit => "take_profit",
            },
        );
    if let Some(p) = c.limit {
        w.f("limit", p.0);
    }
    w.f("reduce_only", c.reduce_only).f("stp", stp_name(c.stp));
}

fn write_market(w: &mut Line, c: &MarketConfig) {
    w.name("add_market")
        .f("tick", c.tick)
        .f("lot_base_atoms", c.lot_base_atoms)
        .f("min_price", c.min_price.0)
        .f("max_price", c.max_price.0)
        .f("max_qty", c.max_qty.0)
        .f("market_band_bps", c.market_band_bps);
    let Some(r) = &c.risk else { return };
    let tiers = r
        .tiers
        .iter()
        .map(|t| format!("{}:{}", t.max_notional, rate_text(t.mm_rate)))
        .collect::<Vec<_>>()
        .join("/");
    w.f("max_leverage", r.max_leverage)
        .f("tiers", tiers)
        .f("tier_count", r.tier_count)
        .f("maker_fee", RateText(r.maker_fee))
        .f("taker_fee", RateText(r.taker_fee))
        .f("vol_lambda", RateText(r.vol_lambda))
        .f("vol_k", RateText(r.vol_k))
        .f("vol_floor", RateText(r.vol_floor))
        .f("vol_cap", RateText(r.vol_cap))
        .f("oi_cap", r.oi_cap)
        .f("account_oi_share_bps", r.account_oi_share_bps)
        .f("max_mark_move_bps", r.max_mark_move_bps);
    let Some(l) = &r.liquidation else { return };
    w.f("buffer", RateText(l.buffer))
        .f("min_notional", l.min_notional)
        .f("band_bps", l.band_bps)
        .f("fee_rate", RateText(l.fee_rate))
        .f(
            "adl",
            match l.adl {
                AdlMode::Queue => "queue",
                AdlMode::ProRata => "pro_rata",
            },
        )
        .f("order_margin", l.order_margin)
        .f("fund_haircut", RateText(l.fund_haircut))
        .f("unwind_rate", RateText(l.unwind_rate))
        .f("isolated_fund", l.isolated_fund);
}

/// The fields of one line being parsed, each taken at most once.
struct Fields<'a> {
    line: usize,
    fields: Vec<(usize, &'a str, &'a str, bool)>,
}

impl Fields<'_> {
    fn err(&self, column: usize, message: String) -> TextError {
        TextError {
            line: self.line,
            column,
            message,
        }
    }

    /// The value of `name` parsed, if present.
    fn opt<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, TextError> {
        let line = self.line;
        let Some(f) = self.fields.iter_mut().find(|f| f.1 == name) else {
            return Ok(None);
        };
        f.3 = true;
        let (col, raw) = (f.0, f.2);
        raw.parse().map(Some).map_err(|_| TextError {
            line,
            column: col,
            message: format!("`{name}`: cannot read `{raw}`"),
        })
    }

    fn req<T: FromStr>(&mut self, name: &str) -> Result<T, TextError> {
        self.opt(name)?
            .ok_or_else(|| self.err(0, format!("missing field `{name}`")))
    }

    fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.1 == name)
    }

    fn word<T>(&mut self, name: &str, words: &[(&str, T)]) -> Result<T, TextError>
    where
        T: Copy,
    {
        let raw: String = self.req(name)?;
        let col = self.fields.iter().find(|f| f.1 == name).map_or(0, |f| f.0);
        words
            .iter()
            .find(|(w, _)| *w == raw)
            .map(|&(_, v)| v)
            .ok_or_else(|| {
                let choices: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
                self.err(
                    col,
                    format!("`{name}`: `{raw}` is not one of {}", choices.join(", ")),
                )
            })
    }

    /// Refuses fields the kind does not take.
    fn finish(&self) -> Result<(), TextError> {
        match self.fields.iter().find(|f| !f.3) {
            Some(f) => Err(self.err(f.0, format!("unexpected field `{}`", f.1))),
            None => Ok(()),
        }
    }
}

const SIDES: [(&str, Side); 2] = [("buy", Side::Buy), ("sell", Side::Sell)];
const STPS: [(&str, StpMode); 3] = [
    ("cancel_resting", StpMode::CancelResting),
    ("cancel_aggressor", StpMode::CancelAggressor),
    ("decrement_both", StpMode::DecrementBoth),
];

/// Parses one command line (not the header, not a comment); `line` is its number.
pub fn parse_line(text: &str, line: usize) -> Result<Command, TextError> {
    let parts: Vec<&str> = text.split(',').collect();
    let at = |column: usize, message: String| TextError {
        line,
        column,
        message,
    };
    if parts.len() < 3 {
        return Err(at(0, "expected seq,ts_ns,command[,name=value...]".into()));
    }
    let seq = parts[0]
        .trim()
        .parse()
        .map_err(|_| at(1, format!("seq: cannot read `{}`", parts[0])))?;
    let ts_ns = parts[1]
        .trim()
        .parse()
        .map_err(|_| at(2, format!("ts_ns: cannot read `{}`", parts[1])))?;
    let mut fields = Fields {
        line,
        fields: Vec::new(),
    };
    for (i, p) in parts.iter().enumerate().skip(3) {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| at(i + 1, format!("expected name=value, found `{p}`")))?;
        let k = k.trim();
        if fields.has(k) {
            return Err(at(i + 1, format!("field `{k}` given twice")));
        }
        fields.fields.push((i + 1, k, v.trim(), false));
    }
    let kind = parse_kind(parts[2].trim(), &mut fields).map_err(|e| match e.column {
        usize::MAX => at(3, e.message),
        _ => e,
    })?;
    fields.finish()?;
    Ok(Command { seq, ts_ns, kind })
}

fn parse_kind(name: &str, f: &mut Fields) -> Result<CommandKind, TextError> {
    let account = |f: &mut Fields| f.req("account").map(AccountId);
    let market = |f: &mut Fields| f.req("market").map(MarketId);
    Ok(match name {
        "add_market" => CommandKind::AddMarket(Box::new(parse_market(f)?)),
        "halt_market" => CommandKind::HaltMarket(market(f)?),
        "resume_market" => CommandKind::ResumeMarket(market(f)?),
        "open_account" => CommandKind::OpenAccount(account(f)?),
        "new_order" => CommandKind::NewOrder(parse_order(f)?),
        "cancel" => CommandKind::Cancel {
            account: account(f)?,
            order_id: OrderId(f.req("order_id")?),
        },
        "cancel_by_client_id" => CommandKind::CancelByClientId {
            account: account(f)?,
            client_id: ClientOrderId(f.req("client_id")?),
        },
        "cancel_replace" => CommandKind::CancelReplace {
            account: account(f)?,
            order_id: OrderId(f.req("order_id")?),
            price: Price(f.req("price")?),
            qty: Qty(f.req("qty")?),
        },
        "mass_cancel" => CommandKind::MassCancel {
            account: account(f)?,
            market: f.opt("market")?.map(MarketId),
        },
        "insurance_deposit" => CommandKind::InsuranceDeposit {
            market: f.opt("market")?.map(MarketId),
            amount: f.req("amount")?,
        },
        "deposit" => CommandKind::Deposit {
            account: account(f)?,
            amount: f.req("amount")?,
        },
        "withdraw" => CommandKind::Withdraw {
            account: account(f)?,
            amount: f.req("amount")?,
        },
        "set_leverage" => CommandKind::SetLeverage {
            account: account(f)?,
            market: market(f)?,
            leverage: f.req("leverage")?,
        },
        "set_margin_mode" => CommandKind::SetMarginMode {
            account: account(f)?,
            market: market(f)?,
            isolated: f.req("isolated")?,
        },
        "transfer_isolated" => CommandKind::TransferIsolated {
            account: account(f)?,
            market: market(f)?,
            amount: f.req("amount")?,
        },
        "mark_price" => CommandKind::MarkPrice {
            market: market(f)?,
            price: Price(f.req("price")?),
        },
        "funding_rate" => CommandKind::FundingRate {
            market: market(f)?,
            rate: f.req("rate")?,
        },
        "new_conditional" => CommandKind::NewConditional(parse_conditional(f)?),
        "cancel_conditional" => CommandKind::CancelConditional {
            account: account(f)?,
            order_id: OrderId(f.req("order_id")?),
        },
        other => {
            return Err(TextError {
                line: f.line,
                column: usize::MAX,
                message: format!("unknown command `{other}`"),
            })
        }
    })
}

fn parse_order(f: &mut Fields) -> Result<NewOrder, TextError> {
    let (account, market, client_id) = (f.req("account")?, f.req("market")?, f.req("client_id")?);
    let side = f.word("side", &SIDES)?;
    let types = [
        ("limit", 0),
        ("ioc", 1),
        ("fok", 2),
        ("post_only", 3),
        ("market", 4),
    ];
    let order_type = match f.word("type", &types)? {
        4 => OrderType::Market,
        t => {
            let p = Price(f.req("price")?);
            [
                OrderType::Limit(p),
                OrderType::Ioc(p),
                OrderType::Fok(p),
                OrderType::PostOnly(p),
            ][t]
        }
    };
    Ok(NewOrder {
        account: AccountId(account),
        market: MarketId(market),
        client_id: ClientOrderId(client_id),
        side,
        order_type,
        qty: Qty(f.req("qty")?),
        stp: f.word("stp", &STPS)?,
        reduce_only: f.req("reduce_only")?,
    })
}

fn parse_conditional(f: &mut Fields) -> Result<ConditionalOrder, TextError> {
    let (account, market, client_id) = (f.req("account")?, f.req("market")?, f.req("client_id")?);
    Ok(ConditionalOrder {
        account: AccountId(account),
        market: MarketId(market),
        client_id: ClientOrderId(client_id),
        side: f.word("side", &SIDES)?,
        qty: Qty(f.req("qty")?),
        trigger: Price(f.req("trigger")?),
        kind: f.word(
            "kind",
            &[
                ("stop", ConditionalKind::Stop),
                ("take_profit", ConditionalKind::TakeProfit),
            ],
        )?,
        limit: f.opt("limit")?.map(Price),
        reduce_only: f.req("reduce_only")?,
        stp: f.word("stp", &STPS)?,
    })
}

fn parse_market(f: &mut Fields) -> Result<MarketConfig, TextError> {
    let mut c = MarketConfig {
        tick: f.req("tick")?,
        lot_base_atoms: f.req("lot_base_atoms")?,
        min_price: Price(f.req("min_price")?),
        max_price: Price(f.req("max_price")?),
        max_qty: Qty(f.req("max_qty")?),
        market_band_bps: f.req("market_band_bps")?,
        risk: None,
    };
    if f.has("max_leverage") {
        c.risk = Some(parse_risk(f)?);
    }
    Ok(c)
}

fn parse_tiers(f: &mut Fields) -> Result<[Tier; MAX_TIERS], TextError> {
    let raw: String = f.req("tiers")?;
    let col = f.fields.iter().find(|x| x.1 == "tiers").map_or(0, |x| x.0);
    let bad = || {
        f.err(
            col,
            format!("`tiers`: expected {MAX_TIERS} max_notional:mm_rate pairs joined by /"),
        )
    };
    let mut tiers = [Tier::default(); MAX_TIERS];
    let pairs: Vec<&str> = raw.split('/').collect();
    if pairs.len() != MAX_TIERS {
        return Err(bad());
    }
    for (t, p) in tiers.iter_mut().zip(pairs) {
        let (n, r) = p.split_once(':').ok_or_else(bad)?;
        t.max_notional = n.parse().map_err(|_| bad())?;
        t.mm_rate = r.parse().map_err(|_| bad())?;
    }
    Ok(tiers)
}

fn parse_risk(f: &mut Fields) -> Result<RiskConfig, TextError> {
    let mut r = RiskConfig {
        max_leverage: f.req("max_leverage")?,
        tiers: parse_tiers(f)?,
        tier_count: f.req("tier_count")?,
        maker_fee: f.req::<Rate>("maker_fee")?,
        taker_fee: f.req("taker_fee")?,
        vol_lambda: f.req("vol_lambda")?,
        vol_k: f.req("vol_k")?,
        vol_floor: f.req("vol_floor")?,
        vol_cap: f.req("vol_cap")?,
        oi_cap: f.req("oi_cap")?,
        account_oi_share_bps: f.req("account_oi_share_bps")?,
        max_mark_move_bps: f.req("max_mark_move_bps")?,
        liquidation: None,
    };
    if f.has("buffer") {
        r.liquidation = Some(LiquidationConfig {
            buffer: f.req("buffer")?,
            min_notional: f.req("min_notional")?,
            band_bps: f.req("band_bps")?,
            fee_rate: f.req("fee_rate")?,
            adl: f.word(
                "adl",
                &[("queue", AdlMode::Queue), ("pro_rata", AdlMode::ProRata)],
            )?,
            order_margin: f.req("order_margin")?,
            fund_haircut: f.req("fund_haircut")?,
            unwind_rate: f.req("unwind_rate")?,
            isolated_fund: f.req("isolated_fund")?,
        });
    }
    Ok(r)
}

/// Parses a whole log: the header, then commands and comments; returns the commands and
/// the `# engine:` line's text, if any.
pub fn parse_log(text: &str) -> Result<(Vec<Command>, Option<String>), TextError> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => {
            return Err(TextError {
                line: 1,
                column: 0,
                message: format!("expected the header `{HEADER}`"),
            })
        }
    }
    let (mut commands, mut engine) = (Vec::new(), None);
    for (i, l) in lines {
        let l = l.trim();
        if let Some(c) = l.strip_prefix('#') {
            if let Some(e) = c.trim().strip_prefix("engine:") {
                engine = Some(e.trim().to_string());
            }
        } else if !l.is_empty() {
            commands.push(parse_line(l, i + 1)?);
        }
    }
    Ok((commands, engine))
}
