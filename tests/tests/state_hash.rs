//! `Engine::state_hash`: a digest of the state in a canonical form. Engines laid out
//! differently in memory (other capacities, another hash seed) that emit the same events
//! have the same hash after every command; a rejected command leaves it alone; money,
//! orders and positions moving change it.

use cascade_core::{Engine, EngineConfig, Event, EventKind};
use cascade_tests::gen;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("CASCADE_LIQ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// Capacities large enough that neither engine refuses for capacity on these streams,
/// different enough that slot numbers and table positions differ.
fn engines() -> (Engine, Engine) {
    let a = EngineConfig {
        max_orders: 64,
        max_positions: 64,
        max_conditionals: 64,
        max_orders_per_account: 64,
        ..gen::CONFIG
    };
    let b = EngineConfig {
        max_orders: 1_000,
        max_positions: 500,
        max_conditionals: 300,
        max_orders_per_account: 64,
        liquidation_ring: 3,
        hash_seed: 0x0123_4567_89ab_cdef,
        ..gen::CONFIG
    };
    (Engine::new(a), Engine::new(b))
}

fn changes_state(events: &[Event]) -> bool {
    events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Fill { .. }
                | EventKind::Deposited { .. }
                | EventKind::Withdrawn { .. }
                | EventKind::Accepted { .. }
                | EventKind::Cancelled { .. }
                | EventKind::AccountOpened(_)
                | EventKind::MarketAdded(_)
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn layout_never_changes_the_hash_and_state_changes_do(
        stream in gen::arb_liquidation_stream(80, false)
    ) {
        let (mut a, mut b) = engines();
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for c in &stream {
            let before = a.state_hash();
            ea.clear();
            eb.clear();
            a.apply(c, &mut ea);
            b.apply(c, &mut eb);
            prop_assert_eq!(&ea, &eb);
            let after = a.state_hash();
            prop_assert_eq!(after, b.state_hash(), "after seq {}", c.seq);
            if matches!(ea.as_slice(), [Event { kind: EventKind::Rejected(_), .. }]) {
                prop_assert_eq!(after, before, "a rejected command changed the hash");
            }
            if changes_state(&ea) {
                prop_assert_ne!(after, before, "seq {}: {:?}", c.seq, ea);
            }
        }
    }
}
