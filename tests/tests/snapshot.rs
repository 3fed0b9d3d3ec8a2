//! Snapshots (`Engine::snapshot`, `Engine::restore`): at random cut points of generated
//! liquidating streams (funding, stops, isolated margin, liquidations, ADL), the restored
//! engine passes `verify`, snapshots to the same bytes, has the same state hash, and
//! emits exactly the original's events for the rest of the stream; cut, extended or
//! random bytes are refused.

use cascade_core::{Command, Engine, EngineConfig, SnapshotError};
use cascade_tests::gen;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CASCADE_LIQ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

fn config() -> EngineConfig {
    EngineConfig {
        max_conditionals: 8,
        ..gen::CONFIG
    }
}

fn snapshot(e: &Engine) -> Vec<u8> {
    let mut out = Vec::new();
    e.snapshot(&mut out);
    out
}

/// Runs `stream`, restoring a copy from a snapshot after command `cut`, and compares
/// the two from there on.
fn check_cut(stream: &[Command], cut: usize) -> Result<(), TestCaseError> {
    let mut original = Engine::new(config());
    let mut sink = Vec::new();
    for c in &stream[..cut] {
        original.apply(c, &mut sink);
    }
    let bytes = snapshot(&original);
    let mut restored =
        Engine::restore(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    restored.verify().map_err(TestCaseError::fail)?;
    prop_assert_eq!(
        snapshot(&restored),
        bytes.clone(),
        "restore -> snapshot differs"
    );
    prop_assert_eq!(restored.state_hash(), original.state_hash());
    prop_assert_eq!(restored.last_seq(), original.last_seq());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for c in &stream[cut..] {
        a.clear();
        b.clear();
        original.apply(c, &mut a);
        restored.apply(c, &mut b);
        prop_assert_eq!(&a, &b, "seq {}", c.seq);
        restored.verify().map_err(TestCaseError::fail)?;
    }
    prop_assert_eq!(restored.state_hash(), original.state_hash());
    prop_assert_eq!(snapshot(&restored), snapshot(&original));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_restored_engine_continues_exactly(
        stream in gen::arb_liquidation_stream(70, false), cut in any::<prop::sample::Index>()
    ) {
        check_cut(&stream, cut.index(stream.len() + 1))?;
    }

    #[test]
    fn a_restored_engine_continues_exactly_under_funding(
        stream in gen::arb_funding_stream(70), cut in any::<prop::sample::Index>()
    ) {
        check_cut(&stream, cut.index(stream.len() + 1))?;
    }

    /// A snapshot cut short anywhere is refused. (Damaged amounts are not detected
    /// here: restore trusts them, and the snapshot file's checksum is what catches a
    /// changed byte.)
    #[test]
    fn a_cut_snapshot_is_refused(
        stream in gen::arb_liquidation_stream(40, false), cut in any::<prop::sample::Index>()
    ) {
        let mut e = Engine::new(config());
        let mut sink = Vec::new();
        for c in &stream {
            e.apply(c, &mut sink);
        }
        let bytes = snapshot(&e);
        prop_assert!(Engine::restore(&bytes[..cut.index(bytes.len())]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Engine::restore(&longer).is_err());
    }

    #[test]
    fn random_bytes_are_not_a_snapshot(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert!(Engine::restore(&bytes).is_err());
    }
}

#[test]
fn a_snapshot_of_another_version_or_kind_is_refused() {
    let bytes = snapshot(&Engine::new(config()));
    assert!(Engine::restore(&bytes).is_ok());
    let mut v2 = bytes.clone();
    v2[8] = 2;
    assert_eq!(Engine::restore(&v2).err(), Some(SnapshotError::Version(2)));
    assert_eq!(
        Engine::restore(b"CASCJRNL...").err(),
        Some(SnapshotError::NotASnapshot)
    );
}

/// A snapshot whose position record disagrees with the account's resting orders (here
/// the buy quantity) is refused: a restored engine would otherwise miscount margin, or
/// panic on the order's cancel when no position slot is free.
#[test]
fn resting_quantities_must_match_the_orders() {
    use cascade_core::{
        AccountId, ClientOrderId, CommandKind, MarketId, NewOrder, OrderType, Price, Qty, Side,
        StpMode,
    };
    let mut e = Engine::new(config());
    let mut sink = Vec::new();
    let order = CommandKind::NewOrder(NewOrder {
        account: AccountId(0),
        market: MarketId(1),
        client_id: ClientOrderId(1),
        side: Side::Buy,
        order_type: OrderType::Limit(Price(140)),
        qty: Qty(7),
        stp: StpMode::CancelResting,
        reduce_only: false,
    });
    let setup = gen::setup();
    for c in &setup {
        e.apply(c, &mut sink);
    }
    let seq = setup.len() as u64 + 1;
    e.apply(
        &Command {
            seq,
            ts_ns: 0,
            kind: order,
        },
        &mut sink,
    );
    assert_eq!(e.position(AccountId(0), MarketId(1)).unwrap().buy_open, 7);
    let bytes = snapshot(&e);
    assert!(Engine::restore(&bytes).is_ok());
    // The last 7 as an i64 is the position's resting buy quantity (orders come first).
    let seven = 7i64.to_le_bytes();
    let at = (0..bytes.len() - 8)
        .rev()
        .find(|&i| bytes[i..i + 8] == seven)
        .unwrap();
    let mut wrong = bytes.clone();
    wrong[at] = 6;
    match Engine::restore(&wrong) {
        Err(SnapshotError::Invalid(why)) => assert!(why.contains("resting quantities"), "{why}"),
        other => panic!("{:?}", other.map(|e| e.state_hash())),
    }
}
