//! What a lab run is asked to do: the index path, how the mark follows it, and how the
//! book's liquidity responds.
//!
//! Invariants: a scenario is plain data; [`Scenario::validate`] judges what can be judged
//! without an engine, and the runner refuses only what needs one (a market without a
//! mark, a lab account that cannot take its deposit).

use crate::types::{AccountId, MarketId, Price};

/// How the mark is formed from the index and the market's own prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkRule {
    /// Exogenous: the mark is the index (the engine's oracle input, unchanged).
    Index,
    /// Endogenous: the median of the index, the last trade price and the book's mid
    /// (the mid rounded down to a tick; a missing price is replaced by the index). Trades
    /// that walk the book therefore move the mark, which can liquidate more: the
    /// feedback loop. This is the shape of Hyperliquid's median-of-three mark.
    MedianOfThree,
    /// Endogenous, never sheltered by a lagging book: the median of three, but no
    /// better than the index for the side the index has moved against (the lower of
    /// the two while the index is below its start, the higher while above, the index
    /// itself at the start). Trades through the book can push the mark past the index;
    /// a book that has not caught up cannot hold it back. A monotone fall then
    /// liquidates every long pool the exogenous run does.
    AdverseMedian,
}

/// Liquidity that comes back after it is taken (Obizhaeva–Wang resilience), quoted by
/// one maker account around an anchor between the market's own price (the last trade,
/// or the mark before any) and the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refill {
    /// The maker that quotes the refill; must be an open account. The lab credits it
    /// `deposit` atoms on its copy so its quotes pass margin.
    pub account: AccountId,
    /// Atoms credited to `account` on the copy before the first step.
    pub deposit: i64,
    /// Share of each profile level's missing quantity restored per step, in bps
    /// (10,000: the profile is restored in full every step; 0: no refill).
    pub rate_bps: u32,
    /// Levels of the starting book on each side that form the profile: their distance
    /// from the starting mark and their quantity. The refill keeps that shape around the
    /// anchor.
    pub levels: u32,
    /// Weight of the index in the anchor, bps: 10,000 quotes around the index (makers
    /// know fair value), 0 around the last trade (makers follow the market they quote
    /// in, and carry a crash's price into the mid).
    pub index_weight_bps: u32,
    /// Makers pull: in a step whose index moves more than this many bps, the refill
    /// quotes are cancelled and not restored until a calmer step (0: never pull).
    pub pull_bps: u32,
}

/// Basis arbitrage: a trader who sells the perpetual when its bids stand above the
/// index and buys when its asks stand below, up to a capacity per step. It pulls the
/// market's own prices, and so the endogenous mark, back towards the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arbitrage {
    /// The arbitrageur; must be an open account other than the refill maker's. The lab
    /// credits it `deposit` atoms on its copy.
    pub account: AccountId,
    /// Atoms credited to `account` on the copy before the first step.
    pub deposit: i64,
    /// Most lots it trades per step (each way).
    pub lots_per_step: i64,
}

/// Pre-liquidation: between a pre-liquidation level above maintenance margin and MM
/// itself, positions are reduced gradually by reduce-only market orders instead of
/// waiting for one large liquidation at MM. The close factor rises linearly with the
/// loss of health, as in Morpho's pre-liquidations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreLiquidation {
    /// The band's upper edge: a pool enters it when equity < MM × level (bps of MM,
    /// > 10,000; 15,000: at one and a half times maintenance margin).
    pub level_bps: u32,
    /// Share of the position closed per step at MM (bps); at health `h` = equity / MM in
    /// the band (`h` and `level` in multiples of MM), `max_close × (level − h) / (level
    /// − 1)`, rounded up to whole lots.
    pub max_close_bps: u32,
    /// Share of the taker fee the lab refunds on pre-liquidation fills (bps): the lower
    /// fee that rewards closing early (rounded down: against the account).
    pub fee_refund_bps: u32,
}

/// One lab run.
#[derive(Clone, Copy, Debug)]
pub struct Scenario<'a> {
    /// Market the index path drives (leveraged, with a mark).
    pub market: MarketId,
    /// The index, one price per step.
    pub index: &'a [Price],
    /// How the mark follows the index.
    pub rule: MarkRule,
    /// Liquidity refill, if any.
    pub refill: Option<Refill>,
    /// Basis arbitrage, if any.
    pub arbitrage: Option<Arbitrage>,
    /// Most mark updates per step while the mark chases its own feedback (≥ 1). A step
    /// ends early when the rule gives the mark it already has.
    pub max_rounds: u32,
    /// Depth is reported as the lots resting within this many bps of the mark.
    pub depth_bps: u32,
    /// Compare the ADL policies on every step with ADL fills (O(accounts) per such
    /// step).
    pub compare_adl: bool,
    /// Pre-liquidation in `market` after every step's marks (O(accounts) per step), if
    /// any.
    pub pre_liquidation: Option<PreLiquidation>,
    /// Other markets the run drives: their index stays at their starting mark while
    /// their mark follows the rule, and the refill and arbitrage act there too, so a
    /// shock in `market` reaches them through cross-margined accounts (contagion).
    pub also: &'a [MarketId],
}

/// Why a scenario cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioError {
    /// The market (or one in `also`) does not exist, is not leveraged, or has no mark
    /// yet.
    NoMark,
    /// `also` names the scenario's market or one market twice.
    DuplicateMarket,
    /// The index path is empty.
    EmptyPath,
    /// `max_rounds` is 0.
    NoRounds,
    /// The refill account is not open, or its deposit was refused.
    RefillAccount,
    /// The arbitrageur is not open, is the refill maker, or its deposit was refused.
    ArbitrageAccount,
    /// The pre-liquidation level is not above MM (`level_bps` ≤ 10,000).
    PreLiquidationLevel,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScenarioError::NoMark => "a market is not leveraged or has no mark yet",
            ScenarioError::DuplicateMarket => "a market is driven twice",
            ScenarioError::EmptyPath => "the index path is empty",
            ScenarioError::NoRounds => "max_rounds must be at least 1",
            ScenarioError::RefillAccount => "the refill account is not open or cannot deposit",
            ScenarioError::PreLiquidationLevel => "the pre-liquidation level must exceed 10000 bps",
            ScenarioError::ArbitrageAccount => {
                "the arbitrage account is not open, is the refill maker, or cannot deposit"
            }
        })
    }
}

impl std::error::Error for ScenarioError {}

impl<'a> Scenario<'a> {
    /// An exogenous run of `index` on market `m` with no refill: the mark is the index.
    pub fn exogenous(m: MarketId, index: &'a [Price]) -> Scenario<'a> {
        Scenario {
            market: m,
            index,
            rule: MarkRule::Index,
            refill: None,
            arbitrage: None,
            max_rounds: 1,
            depth_bps: 200,
            compare_adl: false,
            pre_liquidation: None,
            also: &[],
        }
    }

    /// An endogenous run: median-of-three mark, up to 16 feedback rounds per step.
    pub fn endogenous(m: MarketId, index: &'a [Price], refill: Option<Refill>) -> Scenario<'a> {
        Scenario {
            rule: MarkRule::MedianOfThree,
            refill,
            max_rounds: 16,
            ..Scenario::exogenous(m, index)
        }
    }

    /// Checks what can be checked without an engine.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.index.is_empty() {
            return Err(ScenarioError::EmptyPath);
        }
        if self.max_rounds == 0 {
            return Err(ScenarioError::NoRounds);
        }
        for (k, m) in self.also.iter().enumerate() {
            if *m == self.market || self.also[..k].contains(m) {
                return Err(ScenarioError::DuplicateMarket);
            }
        }
        if self.pre_liquidation.is_some_and(|p| p.level_bps <= 10_000) {
            return Err(ScenarioError::PreLiquidationLevel);
        }
        if let (Some(r), Some(a)) = (self.refill, self.arbitrage) {
            if r.account == a.account {
                return Err(ScenarioError::ArbitrageAccount);
            }
        }
        Ok(())
    }
}

/// The median of three prices.
pub fn median3(a: i64, b: i64, c: i64) -> i64 {
    a.max(b).min(a.min(b).max(c))
}

#[cfg(test)]
mod tests {
    use super::median3;

    #[test]
    fn median_of_three_is_the_middle_value_in_every_order() {
        for (a, b, c) in [
            (1, 2, 3),
            (1, 3, 2),
            (2, 1, 3),
            (2, 3, 1),
            (3, 1, 2),
            (3, 2, 1),
        ] {
            assert_eq!(median3(a, b, c), 2, "{a} {b} {c}");
        }
        assert_eq!(median3(5, 5, 1), 5);
        assert_eq!(median3(1, 5, 1), 1);
    }
}
