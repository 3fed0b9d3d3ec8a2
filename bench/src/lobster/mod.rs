//! LOBSTER (limit order book data from NASDAQ ITCH) replay and conformance.

pub mod parse;
pub mod replay;

pub use parse::{parse_messages, parse_rows, Message, ParseError, Rows};
pub use replay::{replay, ReplayError, Report, Summary};

use std::path::Path;

/// Reads and parses a message/orderbook file pair.
pub fn load(messages: &Path, orderbook: &Path) -> Result<(Vec<Message>, Rows), String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let msgs = parse_messages(messages, &read(messages)?).map_err(|e| e.to_string())?;
    let rows = parse_rows(orderbook, &read(orderbook)?).map_err(|e| e.to_string())?;
    Ok((msgs, rows))
}
