//! An honest evaluation of the early-warning model on recorded prices: positions opened
//! every `stride` minutes at common leverages, the model's probability of liquidation
//! within `h` minutes against whether the recorded lows (highs for shorts) reached the
//! liquidation price, binned for calibration and scored by Brier, beside a naive
//! baseline that knows only the distance.
//!
//! Invariants: the model's probability comes from `cascade_core::lab::warning` (fixed
//! point); its volatility input uses only minutes up to the decision (an EWMA of squared
//! one-minute log returns of closes); the baseline uses one constant volatility for the
//! whole evaluation. Windows overlap when `stride < h`, so samples are not independent:
//! the sample count overstates the evidence.

use cascade_core::lab::warning::first_passage;
use cascade_core::lab::warning::ln_ratio;
use cascade_core::Rate;
use std::path::Path;

/// One minute bar: high, low, close in $0.1 units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Highest price in the minute.
    pub high: i64,
    /// Lowest price in the minute.
    pub low: i64,
    /// Last price of the minute.
    pub close: i64,
}

/// Reads a kline CSV (`time,open,high,low,close,...`, header optional) into bars.
pub fn load_bars(path: &Path) -> Result<Vec<Bar>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split(',').collect();
        let num = |i: usize| cols.get(i).and_then(|c| c.trim().parse::<f64>().ok());
        match (num(2), num(3), num(4)) {
            (Some(h), Some(l), Some(c)) if h >= l && l > 0.0 => out.push(Bar {
                high: (h * 10.0).round() as i64,
                low: (l * 10.0).round() as i64,
                close: (c * 10.0).round() as i64,
            }),
            _ if n == 0 => {} // header
            _ => return Err(format!("{}:{}: not a kline row", path.display(), n + 1)),
        }
    }
    if out.len() < 2 {
        return Err(format!("{}: fewer than two bars", path.display()));
    }
    Ok(out)
}

/// Per-minute volatility estimates: `sigma[t]` uses closes up to minute `t` only.
pub fn ewma_sigma(bars: &[Bar], half_life_min: f64) -> Vec<f64> {
    let lambda = 1.0 - 0.5f64.powf(1.0 / half_life_min);
    let mut var: Option<f64> = None;
    let mut out = Vec::with_capacity(bars.len());
    out.push(0.0);
    for w in bars.windows(2) {
        let r = (w[1].close as f64 / w[0].close as f64).ln();
        let v = var.map_or(r * r, |v| v + lambda * (r * r - v));
        var = Some(v);
        out.push(v.sqrt());
    }
    out
}

/// The parameters of one evaluation.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Horizon, minutes.
    pub horizon: usize,
    /// Minutes between decisions.
    pub stride: usize,
    /// Leverages at which positions open (both sides).
    pub leverages: Vec<u32>,
    /// Maintenance margin rate of the positions, bps.
    pub mm_bps: i64,
    /// Minutes of history before the first decision.
    pub warmup: usize,
    /// Half-life of the volatility EWMA, minutes.
    pub half_life: f64,
    /// The baseline's constant volatility per minute.
    pub naive_sigma: f64,
}

/// Calibration bin edges (predicted probability).
pub const BIN_EDGES: [f64; 9] = [0.0, 0.01, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.000_000_1];

/// One calibration bin.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bin {
    /// Samples in the bin.
    pub n: u64,
    /// Σ predicted.
    pub predicted: f64,
    /// Samples liquidated.
    pub hits: u64,
}

/// What an evaluation found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Samples (decisions × leverages × sides).
    pub samples: u64,
    /// Samples whose liquidation price was reached within the horizon.
    pub hits: u64,
    /// Brier score of the model.
    pub brier_model: f64,
    /// Brier score of the constant-volatility baseline.
    pub brier_naive: f64,
    /// Brier score of always predicting the base rate (hindsight: it knows the rate).
    pub brier_climatology: f64,
    /// Calibration of the model, one bin per [`BIN_EDGES`] interval.
    pub model_bins: Vec<Bin>,
    /// Calibration of the baseline.
    pub naive_bins: Vec<Bin>,
}

fn to_rate(x: f64) -> Rate {
    Rate::from_num(x.clamp(0.0, 1e6))
}

fn bin_of(p: f64) -> usize {
    BIN_EDGES
        .windows(2)
        .position(|w| p >= w[0] && p < w[1])
        .unwrap_or(BIN_EDGES.len() - 2)
}

/// Evaluates the model over `bars`.
pub fn evaluate(bars: &[Bar], s: &Setup) -> Evaluation {
    let sigma = ewma_sigma(bars, s.half_life);
    let bins = BIN_EDGES.len() - 1;
    let mut e = Evaluation {
        model_bins: vec![Bin::default(); bins],
        naive_bins: vec![Bin::default(); bins],
        ..Evaluation::default()
    };
    let (mut sq_model, mut sq_naive) = (0.0, 0.0);
    let h = s.horizon as u32;
    let mut t = s.warmup;
    let mut outcomes = Vec::new();
    while t + s.horizon < bars.len() {
        let p0 = bars[t].close;
        let window = &bars[t + 1..=t + s.horizon];
        let low = window.iter().map(|b| b.low).min().unwrap_or(p0);
        let high = window.iter().map(|b| b.high).max().unwrap_or(p0);
        for &lev in &s.leverages {
            let gap = 10_000 / i64::from(lev) - s.mm_bps; // bps of p0 to the trigger
            if gap <= 0 {
                continue;
            }
            for long in [true, false] {
                let trigger = if long {
                    p0 - p0 * gap / 10_000
                } else {
                    p0 + p0 * gap / 10_000
                };
                let hit = if long {
                    low <= trigger
                } else {
                    high >= trigger
                };
                let d = if long {
                    ln_ratio(p0, trigger)
                } else {
                    ln_ratio(trigger, p0)
                };
                let Some(d) = d else {
                    continue; // a trigger at or below 0: no liquidation price
                };
                let pm = first_passage(d, to_rate(sigma[t]), h).to_num::<f64>();
                let pn = first_passage(d, to_rate(s.naive_sigma), h).to_num::<f64>();
                outcomes.push(hit);
                let y = f64::from(u8::from(hit));
                sq_model += (pm - y).powi(2);
                sq_naive += (pn - y).powi(2);
                for (bins, p) in [(&mut e.model_bins, pm), (&mut e.naive_bins, pn)] {
                    let b = &mut bins[bin_of(p)];
                    b.n += 1;
                    b.predicted += p;
                    b.hits += u64::from(hit);
                }
                e.samples += 1;
                e.hits += u64::from(hit);
            }
        }
        t += s.stride.max(1);
    }
    if e.samples > 0 {
        let n = e.samples as f64;
        let rate = e.hits as f64 / n;
        e.brier_model = sq_model / n;
        e.brier_naive = sq_naive / n;
        e.brier_climatology = outcomes
            .iter()
            .map(|&y| (rate - f64::from(u8::from(y))).powi(2))
            .sum::<f64>()
            / n;
    }
    e
}

/// The median of the per-minute volatility estimates after `warmup`.
pub fn median_sigma(bars: &[Bar], half_life: f64, warmup: usize) -> f64 {
    let mut s: Vec<f64> = ewma_sigma(bars, half_life)
        .into_iter()
        .skip(warmup)
        .collect();
    if s.is_empty() {
        return 0.0;
    }
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(n: usize) -> Vec<Bar> {
        vec![
            Bar {
                high: 1_000_000,
                low: 1_000_000,
                close: 1_000_000
            };
            n
        ]
    }

    fn setup() -> Setup {
        Setup {
            horizon: 10,
            stride: 1,
            leverages: vec![10, 100],
            mm_bps: 50,
            warmup: 5,
            half_life: 5.0,
            naive_sigma: 0.0,
        }
    }

    #[test]
    fn a_flat_path_liquidates_nobody_and_a_silent_model_is_perfect() {
        let e = evaluate(&flat(100), &setup());
        assert_eq!(e.samples, 85 * 4);
        assert_eq!(e.hits, 0);
        assert_eq!((e.brier_model, e.brier_naive), (0.0, 0.0));
    }

    #[test]
    fn a_one_percent_drop_liquidates_the_hundred_times_long_only() {
        let mut bars = flat(40);
        for b in &mut bars[20..] {
            *b = Bar {
                high: 990_000,
                low: 990_000,
                close: 990_000,
            };
        }
        let s = Setup {
            stride: 100,
            warmup: 15,
            ..setup()
        };
        let e = evaluate(&bars, &s);
        // One decision at minute 15; the drop at minute 20 is inside its 10 minutes.
        // 100×: trigger 0.5% below; 10×: 9.5% below; shorts never.
        assert_eq!((e.samples, e.hits), (4, 1));
    }
}
