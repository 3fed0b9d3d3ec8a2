//! The command and event codecs (`cascade_core::codec`): every value round-trips over the
//! full range of every field, every event the engine emits decodes to itself, and
//! hostile bytes (random, flipped, truncated, extended) are refused with an error and
//! never a panic; whatever decodes re-encodes to exactly the bytes it came from.

use cascade_core::codec::{DecodeError, COMMAND_BYTES_MAX, REJECT_REASONS};
use cascade_core::{
    AccountId, AdlMode, ClientOrderId, Command, CommandKind, Engine, EngineConfig, Event,
    EventKind, MarketId, NewOrder, OrderType, Price, Qty, RiskConfig, Side, StpMode,
};
use cascade_tests::arb::{command, event};
use cascade_tests::gen;
use proptest::prelude::*;
use std::fmt::Write;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000)
}

fn encode_event(e: &Event) -> Vec<u8> {
    let mut buf = [0u8; cascade_core::event::EVENT_BYTES_MAX];
    let n = e.encode(&mut buf);
    buf[..n].to_vec()
}

fn encode_command(c: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    c.encode(&mut out);
    out
}

// ---- properties ----------------------------------------------------------------------

/// Bytes that decode must re-encode to themselves (the encoding is canonical).
fn canonical_if_decoded(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(c) = Command::decode(bytes) {
        prop_assert_eq!(encode_command(&c), bytes);
    }
    if let Ok(e) = Event::decode(bytes) {
        prop_assert_eq!(encode_event(&e), bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn commands_round_trip(c in command(), d in command()) {
        let bytes = encode_command(&c);
        prop_assert!(bytes.len() <= COMMAND_BYTES_MAX);
        prop_assert_eq!(Command::decode(&bytes), Ok(c.clone()));
        // Two in a row: the prefix decoder finds the first and where it ends.
        let mut both = bytes.clone();
        d.encode(&mut both);
        prop_assert_eq!(Command::decode_prefix(&both), Ok((c, bytes.len())));
        prop_assert_eq!(
            Command::decode(&both),
            Err(DecodeError::TrailingBytes { at: bytes.len() })
        );
    }

    #[test]
    fn events_round_trip(e in event()) {
        let bytes = encode_event(&e);
        prop_assert_eq!(Event::decode(&bytes), Ok(e));
    }

    #[test]
    fn random_bytes_never_panic_and_decode_canonically(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        canonical_if_decoded(&bytes)?;
    }

    /// Valid encodings damaged: one byte changed, cut short, or one byte appended.
    #[test]
    fn damaged_encodings_are_refused_or_canonical(
        c in command(), e in event(), at in any::<usize>(), byte in any::<u8>()
    ) {
        for bytes in [encode_command(&c), encode_event(&e)] {
            let i = at % bytes.len();
            let mut flipped = bytes.clone();
            flipped[i] = byte;
            canonical_if_decoded(&flipped)?;
            canonical_if_decoded(&bytes[..i])?;
            let mut longer = bytes.clone();
            longer.push(byte);
            canonical_if_decoded(&longer)?;
        }
        // A command cut anywhere is refused.
        let bytes = encode_command(&c);
        let cut = &bytes[..at % bytes.len()];
        prop_assert!(Command::decode(cut).is_err());
        let bytes = encode_event(&e);
        prop_assert!(Event::decode(&bytes[..at % bytes.len()]).is_err());
    }

    /// Every event the engine emits on generated leveraged streams (fills, margin calls,
    /// liquidations, ADL, funding, conditional orders, rejects) decodes to itself.
    #[test]
    fn engine_events_decode_to_themselves(stream in gen::arb_liquidation_stream(60, false)) {
        let mut engine = Engine::new(EngineConfig {
            max_conditionals: 8,
            ..gen::CONFIG
        });
        let mut events = Vec::new();
        for c in &stream {
            engine.apply(c, &mut events);
            let bytes = encode_command(c);
            prop_assert_eq!(&Command::decode(&bytes), &Ok(c.clone()));
        }
        for e in &events {
            prop_assert_eq!(Event::decode(&encode_event(e)), Ok(*e));
        }
    }
}

#[test]
fn every_reject_reason_has_its_own_code_and_decodes_to_itself() {
    for (i, &r) in REJECT_REASONS.iter().enumerate() {
        let e = Event {
            seq: 1,
            index: 0,
            kind: EventKind::Rejected(r),
        };
        assert_eq!(Event::decode(&encode_event(&e)), Ok(e), "{r:?}");
        for &other in &REJECT_REASONS[..i] {
            assert_ne!(other, r, "listed twice");
        }
    }
}

/// The layout, pinned: a change of encoding shows here with the old and new bytes.
#[test]
fn a_new_order_encodes_to_these_bytes() {
    let c = Command {
        seq: 0x0102,
        ts_ns: 3,
        kind: CommandKind::NewOrder(NewOrder {
            account: AccountId(7),
            market: MarketId(1),
            client_id: ClientOrderId(9),
            side: Side::Sell,
            order_type: OrderType::Ioc(Price(150)),
            qty: Qty(2),
            stp: StpMode::DecrementBoth,
            reduce_only: true,
        }),
    };
    let hex = encode_command(&c).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    assert_eq!(
        hex,
        concat!(
            "0201000000000000", // seq
            "0300000000000000", // ts_ns
            "05",               // NewOrder
            "07000000",         // account
            "01000000",         // market
            "0900000000000000", // client id
            "01",               // sell
            "01",               // IOC
            "9600000000000000", // price 150
            "0200000000000000", // qty
            "02",               // decrement both
            "01",               // reduce-only
        )
    );
    assert_eq!(
        Command::decode(&encode_command(&c)[..20]),
        Err(DecodeError::Truncated { at: 17 })
    );
    let mut bad = encode_command(&c);
    bad[16] = 20;
    assert_eq!(
        Command::decode(&bad),
        Err(DecodeError::BadTag { at: 16, value: 20 })
    );
}

/// The largest command is an `AddMarket` with risk and liquidation parameters, and it
/// takes exactly `COMMAND_BYTES_MAX` bytes.
#[test]
fn the_largest_command_fills_command_bytes_max() {
    let mut cfg = gen::liquidating_markets(false)[1];
    cfg.risk = cfg.risk.map(|r| RiskConfig {
        liquidation: r.liquidation.or(Some(gen::liquidation(AdlMode::Queue))),
        ..r
    });
    let c = Command {
        seq: 1,
        ts_ns: 0,
        kind: CommandKind::AddMarket(Box::new(cfg)),
    };
    assert_eq!(encode_command(&c).len(), COMMAND_BYTES_MAX);
}
