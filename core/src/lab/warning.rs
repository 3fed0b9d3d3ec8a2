//! Predictive early warning: the probability that the mark reaches a position's
//! liquidation price within a horizon, under a driftless log-normal walk.
//!
//! Model: with `d` the log-distance from the mark to the liquidation price, `σ` the
//! volatility per step and `h` the horizon in steps, the reflection principle gives
//! `P = 2·Φ(−d / (σ√h))`, where Φ is the standard normal distribution function.
//!
//! Invariants: integer and fixed point only (`Rate`, 32.32). Φ comes from a table of the
//! normal upper tail at z = i/64, i = 0..=512, in 32-bit fixed point rounded to nearest,
//! linearly interpolated (interpolation error below 8·10⁻⁶; beyond z = 8 the tail is 0).
//! `ln` is computed exactly to within 2⁻⁶⁰ by range reduction to [1, 2) and the atanh
//! series, then rounded down. A position already at or beyond its liquidation price
//! has probability 1; with σ = 0 and d > 0 it has 0. Probabilities are capped at 1.

use crate::engine::Engine;
use crate::risk::Rate;
use crate::types::{AccountId, MarketId};

/// Q(z) = 1 − Φ(z) at z = i/64, i = 0..=512, times 2³² rounded to nearest.
#[allow(clippy::unreadable_literal)] // a generated table: digit groups would not help
static UPPER_TAIL: [u32; 513] = [
    2147483648, 2120712174, 2093947235, 2067195362, 2040463074, 2013756880, 1987083264, 1960448693,
    1933859599, 1907322386, 1880843416, 1854429013, 1828085449, 1801818950, 1775635683, 1749541754,
    1723543207, 1697646017, 1671856086, 1646179238, 1620621219, 1595187688, 1569884217, 1544716286,
    1519689280, 1494808486, 1470079085, 1445506159, 1421094676, 1396849496, 1372775364, 1348876908,
    1325158638, 1301624942, 1278280082, 1255128198, 1232173297, 1209419260, 1186869836, 1164528638,
    1142399148, 1120484711, 1098788533, 1077313684, 1056063096, 1035039559, 1014245725, 993684104,
    973357067, 953266842, 933415517, 913805041, 894437218, 875313718, 856436066, 837805651,
    819423723, 801291395, 783409645, 765779313, 748401109, 731275607, 714403254, 697784365,
    681419127, 665307604, 649449733, 633845333, 618494098, 603395609, 588549330, 573954610,
    559610690, 545516701, 531671668, 518074515, 504724062, 491619034, 478758059, 466139673,
    453762323, 441624367, 429724081, 418059660, 406629220, 395430801, 384462372, 373721831,
    363207012, 352915683, 342845553, 332994273, 323359439, 313938596, 304729240, 295728821,
    286934745, 278344379, 269955053, 261764063, 253768671, 245966111, 238353592, 230928298,
    223687392, 216628019, 209747308, 203042375, 196510323, 190148249, 183953242, 177922387,
    172052769, 166341470, 160785577, 155382181, 150128378, 145021275, 140057987, 135235641,
    130551380, 126002359, 121585752, 117298753, 113138573, 109102446, 105187629, 101391402,
    97711073, 94143973, 90687463, 87338932, 84095798, 80955511, 77915552, 74973434, 72126702,
    69372937, 66709752, 64134798, 61645758, 59240354, 56916343, 54671518, 52503710, 50410789,
    48390661, 46441270, 44560598, 42746665, 40997531, 39311292, 37686084, 36120079, 34611490,
    33158566, 31759596, 30412903, 29116852, 27869841, 26670309, 25516730, 24407614, 23341506,
    22316991, 21332685, 20387241, 19479347, 18607724, 17771127, 16968345, 16198199, 15459542,
    14751260, 14072270, 13421519, 12797986, 12200676, 11628628, 11080907, 10556605, 10054845,
    9574774, 9115567, 8676424, 8256572, 7855260, 7471765, 7105383, 6755437, 6421272, 6102253,
    5797768, 5507226, 5230057, 4965709, 4713651, 4473370, 4244372, 4026180, 3818335, 3620394,
    3431933, 3252540, 3081821, 2919396, 2764900, 2617982, 2478304, 2345541, 2219383, 2099530,
    1985695, 1877601, 1774985, 1677592, 1585180, 1497514, 1414372, 1335539, 1260811, 1189990,
    1122889, 1059328, 999134, 942144, 888201, 837152, 788856, 743175, 699978, 659139, 620540,
    584066, 549609, 517066, 486337, 457328, 429950, 404118, 379749, 356768, 335100, 314674, 295426,
    277290, 260207, 244120, 228975, 214719, 201304, 188683, 176813, 165651, 155157, 145294, 136027,
    127321, 119145, 111467, 104260, 97497, 91150, 85197, 79615, 74380, 69474, 64876, 60568, 56534,
    52755, 49218, 45907, 42809, 39910, 37199, 34664, 32295, 30080, 28011, 26077, 24272, 22586,
    21013, 19544, 18174, 16896, 15704, 14593, 13557, 12592, 11693, 10855, 10075, 9349, 8673, 8044,
    7459, 6915, 6409, 5939, 5502, 5096, 4719, 4368, 4043, 3741, 3461, 3201, 2960, 2736, 2529, 2337,
    2159, 1994, 1841, 1699, 1568, 1447, 1335, 1231, 1135, 1046, 964, 889, 819, 754, 694, 639, 588,
    541, 498, 458, 421, 387, 356, 327, 300, 276, 253, 232, 213, 196, 179, 164, 151, 138, 127, 116,
    106, 97, 89, 82, 75, 68, 62, 57, 52, 48, 44, 40, 36, 33, 30, 28, 25, 23, 21, 19, 17, 16, 15,
    13, 12, 11, 10, 9, 8, 8, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// ln 2 × 2⁶² rounded to nearest.
const LN2_Q62: i128 = 3_196_577_161_300_663_915;

/// The normal upper tail Q(z) = 1 − Φ(z) = Φ(−z).
pub fn upper_tail(z: Rate) -> Rate {
    if z < Rate::ZERO {
        return Rate::ONE - upper_tail(-z);
    }
    // z in 1/64 steps: index = floor(z × 64), fraction in the low 26 bits of z's bits.
    let bits = z.to_bits() as u64;
    let i = (bits >> 26) as usize;
    if i >= UPPER_TAIL.len() - 1 {
        return Rate::ZERO;
    }
    let frac = i128::from(bits & ((1 << 26) - 1));
    let (a, b) = (i128::from(UPPER_TAIL[i]), i128::from(UPPER_TAIL[i + 1]));
    // a ≥ b: the tail falls; interpolate and round to nearest.
    let v = a - (((a - b) * frac + (1 << 25)) >> 26);
    Rate::from_bits(v as i64)
}

/// ln(a / b) for a, b > 0, rounded down to a `Rate`.
pub fn ln_ratio(a: i64, b: i64) -> Rate {
    assert!(a > 0 && b > 0, "ln_ratio of non-positive values");
    if a < b {
        return -ln_ratio_up(b, a);
    }
    Rate::from_bits((ln_q62(a, b) >> 30) as i64)
}

/// ln(a / b) for a ≥ b > 0, rounded up.
fn ln_ratio_up(a: i64, b: i64) -> Rate {
    let q = ln_q62(a, b);
    Rate::from_bits(((q + (1 << 30) - 1) >> 30) as i64)
}

/// ln(a / b) × 2⁶² for a ≥ b > 0 (to within a few units).
fn ln_q62(a: i64, b: i64) -> i128 {
    let (a, mut b) = (i128::from(a), i128::from(b));
    let mut k = 0i128;
    while a >= 2 * b {
        b *= 2;
        k += 1;
    }
    // r = a / b in [1, 2): ln r = 2·atanh(y), y = (a − b) / (a + b) ≤ 1/3.
    let one = 1i128 << 62;
    let y = ((a - b) << 62) / (a + b);
    let y2 = (y * y) >> 62;
    let (mut term, mut sum, mut n) = (y, 0i128, 1i128);
    while term > 0 {
        sum += term / n;
        term = (term * y2) >> 62;
        n += 2;
    }
    debug_assert!(sum < one);
    k * LN2_Q62 + 2 * sum
}

/// √h as a `Rate`, rounded down.
pub fn sqrt_steps(h: u32) -> Rate {
    if h == 0 {
        return Rate::ZERO;
    }
    let target = u128::from(h) << 64;
    // Integer square root of h·2⁶⁴ by Newton's method from above.
    let mut x = target.max(1);
    let mut y = (x + target / x) / 2;
    while y < x {
        x = y;
        y = (x + target / x) / 2;
    }
    Rate::from_bits(x as i64)
}

/// `P = 2·Φ(−d / (σ√h))`: the probability of a driftless walk with volatility `sigma`
/// per step crossing a barrier at log-distance `d` within `horizon` steps.
pub fn first_passage(d: Rate, sigma: Rate, horizon: u32) -> Rate {
    if d <= Rate::ZERO {
        return Rate::ONE;
    }
    let spread = (i128::from(sigma.to_bits()) * i128::from(sqrt_steps(horizon).to_bits())) >> 32;
    if spread <= 0 {
        return Rate::ZERO;
    }
    let z = (i128::from(d.to_bits()) << 32) / spread;
    let z = Rate::from_bits(z.min(i128::from(i64::MAX)) as i64);
    (upper_tail(z) * 2).min(Rate::ONE)
}

/// The probability that the mark moves from `mark` to `trigger` within `horizon` steps.
pub fn liquidation_probability(mark: i64, trigger: i64, sigma: Rate, horizon: u32) -> Rate {
    if trigger <= 0 || mark <= 0 {
        return Rate::ZERO; // unreachable trigger (a long with no liquidation price)
    }
    let d = if trigger < mark {
        ln_ratio(mark, trigger)
    } else {
        ln_ratio(trigger, mark)
    };
    first_passage(d, sigma, horizon)
}

/// One account at risk in one market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarginWarning {
    /// Account.
    pub account: AccountId,
    /// Market.
    pub market: MarketId,
    /// Probability of liquidation within the horizon.
    pub probability: Rate,
    /// The mark at which its pool meets maintenance margin, to first order (see
    /// [`trigger_estimate`]).
    pub trigger: i64,
    /// Signed position size (lots).
    pub size: i64,
}

/// The mark at which an account's pool would meet maintenance margin if only market
/// `m`'s mark moved, to first order: the pool's margin excess spread over the position
/// (`mark ∓ (equity − maintenance) / |size|`, rounded towards the mark, so the estimate
/// never understates the risk). Ignores maintenance margin's own change with the mark.
/// `None` if the account holds no position in `m`.
pub fn trigger_estimate(engine: &Engine, a: AccountId, m: MarketId) -> Option<i64> {
    let p = engine.position(a, m).filter(|p| p.size != 0)?;
    let mark = engine.market_risk(m)?.mark;
    let (equity, mm) = engine.pool_risk(a, Some(m))?;
    let room = (equity - mm).max(0) / i128::from(p.size.unsigned_abs());
    let room = room.min(i128::from(mark)) as i64;
    Some(if p.size > 0 { mark - room } else { mark + room })
}

/// Every account in `m` whose probability of liquidation within `horizon` steps at
/// volatility `sigma` is at least `min`, most at risk first (ties by account id).
/// O(accounts).
pub fn at_risk(
    engine: &Engine,
    m: MarketId,
    sigma: Rate,
    horizon: u32,
    min: Rate,
) -> Vec<MarginWarning> {
    let Some(mark) = engine.market_risk(m).map(|r| r.mark).filter(|&p| p > 0) else {
        return Vec::new();
    };
    let mut out: Vec<MarginWarning> = (0..engine.config().max_accounts)
        .filter_map(|a| {
            let account = AccountId(a);
            let trigger = trigger_estimate(engine, account, m)?;
            let probability = liquidation_probability(mark, trigger, sigma, horizon);
            (probability >= min).then(|| MarginWarning {
                account,
                market: m,
                probability,
                trigger,
                size: engine.position(account, m).map_or(0, |p| p.size),
            })
        })
        .collect();
    out.sort_by(|x, y| {
        y.probability
            .cmp(&x.probability)
            .then(x.account.cmp(&y.account))
    });
    out
}

/// Emits a [`MarginWarning`] when an account's probability rises across a threshold:
/// it remembers, per account, the highest threshold crossed, and forgets it when the
/// probability falls back below the lowest.
#[derive(Clone, Debug)]
pub struct WarningMonitor {
    thresholds: Vec<Rate>,
    crossed: std::collections::BTreeMap<(AccountId, MarketId), usize>,
}

impl WarningMonitor {
    /// A monitor for `thresholds` (sorted and deduplicated here).
    pub fn new(thresholds: &[Rate]) -> WarningMonitor {
        let mut thresholds = thresholds.to_vec();
        thresholds.sort();
        thresholds.dedup();
        WarningMonitor {
            thresholds,
            crossed: std::collections::BTreeMap::new(),
        }
    }

    /// Scans market `m` and returns the warnings of accounts that crossed a higher
    /// threshold since the last scan, most at risk first.
    pub fn scan(
        &mut self,
        engine: &Engine,
        m: MarketId,
        sigma: Rate,
        horizon: u32,
    ) -> Vec<MarginWarning> {
        let Some(&lowest) = self.thresholds.first() else {
            return Vec::new();
        };
        let all = at_risk(engine, m, sigma, horizon, lowest);
        let live: std::collections::BTreeSet<AccountId> = all.iter().map(|w| w.account).collect();
        self.crossed
            .retain(|&(a, mk), _| mk != m || live.contains(&a));
        all.into_iter()
            .filter(|w| {
                let band = self.thresholds.partition_point(|&t| t <= w.probability);
                let seen = self.crossed.entry((w.account, m)).or_insert(0);
                let rose = band > *seen;
                *seen = band.max(*seen);
                rose
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(r: Rate, x_e9: i64, tol_e9: i64) {
        let v = ((i128::from(r.to_bits()) * 1_000_000_000) >> 32) as i64;
        assert!((v - x_e9).abs() <= tol_e9, "{v} vs {x_e9}");
    }

    #[test]
    fn tail_matches_published_values() {
        // Φ(1) = 0.841344746, Φ(1.96) = 0.975002105, Φ(3) = 0.998650102 (standard tables).
        approx(upper_tail(Rate::ONE), 158_655_254, 10);
        approx(upper_tail(Rate::from_num(196) / 100), 24_997_895, 10_000);
        approx(upper_tail(Rate::from_num(3)), 1_349_898, 10);
        approx(upper_tail(-Rate::ONE), 841_344_746, 10);
        assert_eq!(upper_tail(Rate::ZERO), Rate::from_bits(1 << 31));
        assert_eq!(upper_tail(Rate::from_num(9)), Rate::ZERO);
    }

    #[test]
    fn ln_matches_known_values() {
        approx(ln_ratio(2, 1), 693_147_180, 1);
        approx(ln_ratio(1_000, 1), 6_907_755_278, 2);
        approx(ln_ratio(11, 10), 95_310_179, 1);
        approx(ln_ratio(1, 2), -693_147_181, 1);
        assert_eq!(ln_ratio(7, 7), Rate::ZERO);
    }

    #[test]
    fn sqrt_is_exact_on_squares_and_floors_otherwise() {
        assert_eq!(sqrt_steps(0), Rate::ZERO);
        assert_eq!(sqrt_steps(1), Rate::ONE);
        assert_eq!(sqrt_steps(144), Rate::from_num(12));
        approx(sqrt_steps(2), 1_414_213_562, 1);
    }

    #[test]
    fn first_passage_at_one_sigma_is_twice_the_tail() {
        // d = σ√h: P = 2·Q(1) = 0.317310508.
        let sigma = Rate::from_num(1) / 100;
        let d = Rate::from_num(6) / 100; // h = 36: σ√h = 0.06
        approx(first_passage(d, sigma, 36), 317_310_508, 20);
        assert_eq!(first_passage(Rate::ZERO, sigma, 36), Rate::ONE);
        assert_eq!(first_passage(d, Rate::ZERO, 36), Rate::ZERO);
        assert_eq!(first_passage(d, sigma, 0), Rate::ZERO);
    }

    #[test]
    fn farther_triggers_are_less_likely() {
        let sigma = Rate::from_num(1) / 200;
        let mut last = Rate::ONE;
        for trigger in (50_000..100_000).rev().step_by(997) {
            let p = liquidation_probability(100_000, trigger, sigma, 60);
            assert!(p <= last, "{trigger}");
            last = p;
        }
        assert!(last < Rate::from_num(1) / 1_000_000);
    }
}
