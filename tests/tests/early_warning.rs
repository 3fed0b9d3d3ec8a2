//! The early-warning probability against a high-precision reference written here from
//! the formula (Q(z) = ∫_z^∞ φ by composite Simpson in f64, error ~1e-15), and its
//! monotonicity in distance, volatility and horizon, by proptest.

use cascade_core::lab::warning::{first_passage, upper_tail};
use cascade_core::Rate;
use proptest::prelude::*;

/// Q(z) for z ≥ 0: ∫_z^{z+14} φ(x) dx by Simpson's rule on 20,000 intervals.
fn q_ref(z: f64) -> f64 {
    let (a, b, n) = (z, z + 14.0, 20_000);
    let h = (b - a) / f64::from(n);
    let phi = |x: f64| (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let mut s = phi(a) + phi(b);
    for k in 1..n {
        s += phi(a + h * f64::from(k)) * if k % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}

fn units(r: Rate) -> i64 {
    r.to_bits()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_tail_is_within_one_unit_of_the_reference(bits in 0i64..(9i64 << 32)) {
        let z = bits as f64 / 4_294_967_296.0;
        let want = (q_ref(z) * 4_294_967_296.0).round() as i64;
        let got = units(upper_tail(Rate::from_bits(bits)));
        prop_assert!((got - want).abs() <= 1, "z = {z}: {got} vs {want}");
    }

    #[test]
    fn the_tail_falls_as_z_rises(a in 0i64..(9i64 << 32), b in 0i64..(9i64 << 32)) {
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(upper_tail(Rate::from_bits(lo)) >= upper_tail(Rate::from_bits(hi)));
        // Symmetry: Q(−z) = 1 − Q(z), exactly.
        prop_assert_eq!(upper_tail(Rate::from_bits(-hi)), Rate::ONE - upper_tail(Rate::from_bits(hi)));
    }

    #[test]
    fn the_probability_matches_the_reference_and_is_monotone(
        d in 1i64..(1i64 << 32),          // log-distance 2^-32 .. 1
        sigma in 1_000i64..(1i64 << 28),  // per step, ~2e-7 .. 0.06
        h in 1u32..10_000,
        d2 in 1i64..(1i64 << 32),
        sigma2 in 1_000i64..(1i64 << 28),
    ) {
        let p = first_passage(Rate::from_bits(d), Rate::from_bits(sigma), h);
        let z = (d as f64) / (sigma as f64 * f64::from(h).sqrt());
        let want = (2.0 * q_ref(z) * 4_294_967_296.0).round().min(4_294_967_296.0) as i64;
        // z is rounded to 2^-32 before the tail (at most 0.4 unit of P) and P = 2·Q
        // doubles the tail's unit: two units.
        prop_assert!((units(p) - want).abs() <= 2, "z = {z}: {} vs {want}", units(p));
        // Farther is less likely; more volatile and longer are more likely.
        let (near, far) = (d.min(d2), d.max(d2));
        prop_assert!(first_passage(Rate::from_bits(near), Rate::from_bits(sigma), h)
            >= first_passage(Rate::from_bits(far), Rate::from_bits(sigma), h));
        let (calm, wild) = (sigma.min(sigma2), sigma.max(sigma2));
        prop_assert!(first_passage(Rate::from_bits(d), Rate::from_bits(calm), h)
            <= first_passage(Rate::from_bits(d), Rate::from_bits(wild), h));
        prop_assert!(p <= first_passage(Rate::from_bits(d), Rate::from_bits(sigma), h + 1));
    }
}
