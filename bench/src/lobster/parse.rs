//! Parsing of LOBSTER message and orderbook files (CSV of integers; the message time is
//! decimal seconds after midnight). Errors name the file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

/// One LOBSTER message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Nanoseconds after midnight.
    pub time_ns: u64,
    /// Event type, 1..=7.
    pub kind: u8,
    /// Exchange order reference.
    pub id: i64,
    /// Shares.
    pub size: i64,
    /// Dollar price × 10,000.
    pub price: i64,
    /// +1 buy limit order, -1 sell limit order.
    pub direction: i8,
}

/// A parse failure, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// File being read.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (CSV field).
    pub column: usize,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: column {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.what
        )
    }
}

impl std::error::Error for ParseError {}

/// Dummy prices LOBSTER writes for unoccupied levels.
pub const EMPTY_ASK: i64 = 9_999_999_999;
/// Dummy bid price for unoccupied levels.
pub const EMPTY_BID: i64 = -9_999_999_999;

fn err(file: &Path, line: usize, column: usize, what: impl Into<String>) -> ParseError {
    ParseError {
        file: file.to_owned(),
        line,
        column,
        what: what.into(),
    }
}

fn int(file: &Path, line: usize, column: usize, field: &str) -> Result<i64, ParseError> {
    field
        .trim()
        .parse::<i64>()
        .map_err(|_| err(file, line, column, format!("not an integer: {field:?}")))
}

/// Decimal seconds (e.g. `34200.017459617`) to nanoseconds.
fn seconds_to_ns(file: &Path, line: usize, field: &str) -> Result<u64, ParseError> {
    let bad = || err(file, line, 1, format!("not a time in seconds: {field:?}"));
    let (whole, frac) = field.trim().split_once('.').unwrap_or((field.trim(), ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Some files carry more than nanosecond digits (float artefacts): truncate.
    let frac = &frac[..frac.len().min(9)];
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    let frac_ns: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - frac.len() as u32)
    };
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_ns))
        .ok_or_else(bad)
}

/// A message line's six fields: time in ns, then event type, id, size, price, direction.
type Fields = (u64, [i64; 5]);

/// The fields of a plain line (`digits[.digits]` then five `,[-]digits`, nothing else),
/// or `None` for anything else — which [`exact_fields`] then reads or reports on. One
/// pass over the bytes, no allocation: the common case of a well-formed file.
fn fast_fields(raw: &[u8]) -> Option<Fields> {
    let mut i = 0;
    let digits = |i: &mut usize, max: usize| {
        let (start, mut v, mut used) = (*i, 0u64, 0);
        while let Some(d) = raw.get(*i).filter(|b| b.is_ascii_digit()) {
            if used < max {
                v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                used += 1;
            }
            *i += 1;
        }
        (*i > start).then_some((v, used))
    };
    let (secs, _) = digits(&mut i, usize::MAX)?;
    let mut frac_ns = 0;
    if raw.get(i) == Some(&b'.') {
        i += 1;
        // Up to nine digits count (more are float artefacts); none is allowed.
        let (v, used) = digits(&mut i, 9).unwrap_or((0, 0));
        frac_ns = v * 10u64.pow(9 - used as u32);
    }
    let time_ns = secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)?;
    let mut out = [0i64; 5];
    for f in &mut out {
        if raw.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
        let negative = raw.get(i) == Some(&b'-');
        i += usize::from(negative);
        let v = i64::try_from(digits(&mut i, usize::MAX)?.0).ok()?;
        *f = if negative { -v } else { v };
    }
    (i == raw.len()).then_some((time_ns, out))
}

/// The fields of any line, with the exact error for a malformed one.
fn exact_fields(file: &Path, line: usize, raw: &str) -> Result<Fields, ParseError> {
    let mut fields = raw.split(',');
    let mut next = |col: usize| {
        fields
            .next()
            .ok_or_else(|| err(file, line, col, "missing field (need 6)"))
    };
    let time_ns = seconds_to_ns(file, line, next(1)?)?;
    let mut out = [0i64; 5];
    for (k, f) in out.iter_mut().enumerate() {
        *f = int(file, line, k + 2, next(k + 2)?)?;
    }
    Ok((time_ns, out))
}

/// Parses a whole message file.
pub fn parse_messages(file: &Path, text: &str) -> Result<Vec<Message>, ParseError> {
    let mut out = Vec::with_capacity(text.len() / 40);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let (time_ns, [kind, id, size, price, direction]) = match fast_fields(raw.as_bytes()) {
            Some(f) => f,
            None if raw.trim().is_empty() => continue,
            None => exact_fields(file, line, raw)?,
        };
        if !(1..=7).contains(&kind) {
            return Err(err(file, line, 2, format!("event type {kind} is not 1..7")));
        }
        if direction != 1 && direction != -1 {
            return Err(err(
                file,
                line,
                6,
                format!("direction {direction} is not 1 or -1"),
            ));
        }
        if kind != 7 && (size < 0 || price <= 0) {
            return Err(err(
                file,
                line,
                if size < 0 { 4 } else { 5 },
                "size must be >= 0 and price > 0",
            ));
        }
        out.push(Message {
            time_ns,
            kind: kind as u8,
            id,
            size,
            price,
            direction: direction as i8,
        });
    }
    Ok(out)
}

/// Orderbook rows: for each row, `levels` entries per side of `(price, size)`.
#[derive(Clone, Debug)]
pub struct Rows {
    /// Levels per side.
    pub levels: usize,
    /// Row-major `[ask p, ask q, bid p, bid q] × levels`.
    values: Vec<i64>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len() / (4 * self.levels)
    }

    /// True if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Level `k` (0 = best) of `row`, ask side: `(price, size)`; `None` if unoccupied.
    pub fn ask(&self, row: usize, k: usize) -> Option<(i64, i64)> {
        let base = row * 4 * self.levels + 4 * k;
        let (p, q) = (self.values[base], self.values[base + 1]);
        (p != EMPTY_ASK && q > 0).then_some((p, q))
    }

    /// Level `k` (0 = best) of `row`, bid side: `(price, size)`; `None` if unoccupied.
    pub fn bid(&self, row: usize, k: usize) -> Option<(i64, i64)> {
        let base = row * 4 * self.levels + 4 * k + 2;
        let (p, q) = (self.values[base], self.values[base + 1]);
        (p != EMPTY_BID && q > 0).then_some((p, q))
    }

    /// Every occupied price in the file.
    pub fn prices(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).flat_map(move |r| {
            (0..self.levels)
                .flat_map(move |k| [self.ask(r, k), self.bid(r, k)])
                .flatten()
                .map(|(p, _)| p)
        })
    }
}

/// A row must be shaped like a book: sizes not negative; on each side occupied levels
/// first, then only dummy ones; asks strictly ascending, bids strictly descending. (A
/// crossed row is accepted here and skipped by the replay.)
fn check_row(file: &Path, line: usize, row: &[i64]) -> Result<(), ParseError> {
    for (side, dummy) in [(0usize, EMPTY_ASK), (2, EMPTY_BID)] {
        let mut prev: Option<i64> = None;
        let mut ended = false;
        for (k, level) in row.chunks_exact(4).enumerate() {
            let (price, size) = (level[side], level[side + 1]);
            let col = 4 * k + side + 1;
            if size < 0 {
                return Err(err(file, line, col + 1, "negative size"));
            }
            if price == dummy || size == 0 {
                ended = true;
                continue;
            }
            if ended {
                return Err(err(file, line, col, "occupied level after an empty one"));
            }
            let ordered = prev.is_none_or(|p| if side == 0 { price > p } else { price < p });
            if !ordered || price <= 0 {
                return Err(err(file, line, col, "levels out of price order"));
            }
            prev = Some(price);
        }
    }
    Ok(())
}

/// Parses a whole orderbook file; every row must have the same multiple of 4 columns.
pub fn parse_rows(file: &Path, text: &str) -> Result<Rows, ParseError> {
    let mut values = Vec::with_capacity(text.len() / 7);
    let mut width = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let before = values.len();
        for (c, field) in raw.split(',').enumerate() {
            values.push(int(file, line, c + 1, field)?);
        }
        let n = values.len() - before;
        match width {
            None if n == 0 || n % 4 != 0 => {
                return Err(err(file, line, n, format!("{n} columns: need 4 per level")));
            }
            None => width = Some(n),
            Some(w) if w != n => {
                return Err(err(
                    file,
                    line,
                    n.min(w) + 1,
                    format!("{n} columns, expected {w}"),
                ))
            }
            Some(_) => {}
        }
        check_row(file, line, &values[before..])?;
    }
    let levels = width.map_or(1, |w| w / 4);
    Ok(Rows { levels, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_nanosecond_precision() {
        let m = parse_messages(
            Path::new("m"),
            "34200.017459617,5,0,1,2238200,-1\n34200.5,1,7,2,100,1\n",
        )
        .unwrap();
        assert_eq!(m[0].time_ns, 34_200_017_459_617);
        assert_eq!(m[1].time_ns, 34_200_500_000_000);
        assert_eq!(m[1].direction, 1);
    }

    #[test]
    fn malformed_input_names_file_line_and_column() {
        let e =
            parse_messages(Path::new("m.csv"), "1.0,1,2,3,100,1\n1.0,9,2,3,100,1\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 2));
        let e = parse_messages(Path::new("m.csv"), "1.0,1,2,x,100,1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
        assert!(e.to_string().starts_with("m.csv:1: column 4"));
        let e = parse_messages(Path::new("m.csv"), "1.0,1,2\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
        let e = parse_rows(Path::new("b.csv"), "3,2,1,4\n1,2,3\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_rows(Path::new("b.csv"), "101,5,99,5,100,5,98,5\n").unwrap_err();
        assert_eq!(
            (e.column, e.what.as_str()),
            (5, "levels out of price order")
        );
    }

    #[test]
    fn the_fast_path_reads_exactly_what_the_exact_parser_reads() {
        // Well-formed lines (random values, optional signs and fractions), and lines of
        // 5 to 7 fields drawn from the pieces that matter (overflow, bare signs and dots,
        // spaces, '+', letters, empty fields): whenever the fast path accepts a line, the
        // exact parser must read the same fields; it must accept every well-formed one.
        let pieces = [
            "0",
            "7",
            "34200",
            "18446744073",
            "9223372036854775807",
            "9223372036854775808",
            "-",
            "-1",
            ".",
            ".5",
            ".017459617",
            ".0174596171234",
            " 1",
            "+1",
            "x",
            "",
            "-9223372036854775808",
            "5.",
            "1.2.3",
        ];
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 20
        };
        let (mut accepted, mut plain) = (0, 0);
        for n in 0..200_000 {
            let well_formed = n % 2 == 0;
            let fields: Vec<String> = (0..if well_formed { 6 } else { 5 + next() % 3 })
                .map(|k| {
                    let r = next();
                    if !well_formed {
                        pieces[r as usize % pieces.len()].to_string()
                    } else if k == 0 {
                        let frac = ["", ".", ".5", ".0174596171234"][r as usize % 4];
                        format!("{}{frac}", r % 100_000)
                    } else {
                        format!("{}{}", if r & 1 == 0 { "-" } else { "" }, r % 100_000_000)
                    }
                })
                .collect();
            let line = fields.join(",");
            plain += usize::from(well_formed);
            if let Some(fast) = fast_fields(line.as_bytes()) {
                accepted += 1;
                assert_eq!(Ok(fast), exact_fields(Path::new("m"), 1, &line), "{line:?}");
            } else {
                assert!(!well_formed, "well-formed line refused: {line:?}");
            }
        }
        assert!(
            accepted > plain,
            "only well-formed lines accepted: {accepted}"
        );
    }

    #[test]
    fn dummy_levels_read_as_empty() {
        let r = parse_rows(Path::new("b"), "9999999999,0,100,5\n").unwrap();
        assert_eq!(r.ask(0, 0), None);
        assert_eq!(r.bid(0, 0), Some((100, 5)));
    }
}
