//! Decimal text on the wire and integer units in the core: a market's
//! `price_decimals` and `qty_decimals` say where the point goes.
//!
//! Invariants: parsing is exact (a value with more significant decimals than the
//! market has is refused, never rounded), refuses overflow, and `format_scaled` is its
//! inverse: `parse_scaled(format_scaled(v, d), d) == v` for every `i64` and `d ≤ 9`.

/// Why a decimal field was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalError {
    /// Not `[-]digits[.digits]`.
    Format,
    /// More decimals than the market's precision (non-zero beyond it).
    Precision,
    /// Does not fit.
    Overflow,
}

/// Parses `[-]digits[.digits]` into units of `10^-decimals`.
pub fn parse_scaled(text: &[u8], decimals: u32) -> Result<i64, DecimalError> {
    let (neg, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &[][..]),
    };
    if int.is_empty() && frac.is_empty() || body.len() > 40 {
        return Err(DecimalError::Format);
    }
    if !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return Err(DecimalError::Format);
    }
    let d = decimals as usize;
    if frac.len() > d && frac[d..].iter().any(|&b| b != b'0') {
        return Err(DecimalError::Precision);
    }
    let mut v: i128 = 0;
    let digits = int
        .iter()
        .chain(frac.iter().take(d))
        .chain(std::iter::repeat_n(&b'0', d.saturating_sub(frac.len())));
    for &b in digits {
        v = v * 10 + i128::from(b - b'0');
        if v > 1 << 63 {
            return Err(DecimalError::Overflow);
        }
    }
    i64::try_from(if neg { -v } else { v }).map_err(|_| DecimalError::Overflow)
}

/// Appends `v × 10^-decimals` as decimal text (no exponent; trailing zeros kept to
/// the market's precision, none when `decimals` is 0).
pub fn format_scaled(v: i64, decimals: u32, out: &mut Vec<u8>) {
    use std::io::Write;
    let scale = 10u64.pow(decimals);
    let a = v.unsigned_abs();
    if v < 0 {
        out.push(b'-');
    }
    let _ = write!(out, "{}", a / scale);
    if decimals > 0 {
        let _ = write!(out, ".{:0w$}", a % scale, w = decimals as usize);
    }
}

/// `format_scaled` into a `String`.
pub fn scaled_string(v: i64, decimals: u32) -> String {
    let mut out = Vec::with_capacity(24);
    format_scaled(v, decimals, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_checked() {
        assert_eq!(parse_scaled(b"60000.5", 1), Ok(600_005));
        assert_eq!(parse_scaled(b"60000", 1), Ok(600_000));
        assert_eq!(parse_scaled(b"0.001", 3), Ok(1));
        assert_eq!(parse_scaled(b".5", 1), Ok(5));
        assert_eq!(parse_scaled(b"-1.50", 1), Ok(-15));
        assert_eq!(parse_scaled(b"1.25", 1), Err(DecimalError::Precision));
        assert_eq!(parse_scaled(b"1e5", 1), Err(DecimalError::Format));
        assert_eq!(parse_scaled(b"", 1), Err(DecimalError::Format));
        assert_eq!(parse_scaled(b".", 1), Err(DecimalError::Format));
        assert_eq!(
            parse_scaled(b"99999999999999999999", 0),
            Err(DecimalError::Overflow)
        );
        assert_eq!(scaled_string(600_005, 1), "60000.5");
        assert_eq!(scaled_string(-15, 2), "-0.15");
        assert_eq!(scaled_string(7, 0), "7");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(v in any::<i64>(), d in 0u32..=9) {
            let text = scaled_string(v, d);
            prop_assert_eq!(parse_scaled(text.as_bytes(), d), Ok(v));
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..48), d in 0u32..=9) {
            let _ = parse_scaled(&b, d);
        }
    }
}
