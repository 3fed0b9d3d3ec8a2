//! A counting global allocator proves that, after warm-up, applying commands of the mixed
//! workload performs no heap allocation at all.

use cascade_bench::workload::{self, Mix};
use cascade_core::{Engine, Event, EventSink};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts every allocation and reallocation made by this test binary.
struct Counting;

thread_local! {
    /// Allocations made by this thread (tests run in parallel threads; each counts its own).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: allocations during thread teardown are simply not counted.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged; the only addition is a counter increment, which cannot affect the
// allocation's validity (the counter is a const-initialised thread-local Cell, which
// never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A sink that only counts, so the measurement sees the engine's allocations alone.
#[derive(Default)]
struct CountSink(u64);

impl EventSink for CountSink {
    fn emit(&mut self, _: Event) {
        self.0 += 1;
    }
}

#[test]
fn mixed_workload_allocates_nothing_after_warm_up() {
    allocates_nothing_after_warm_up(Mix {
        commands: 300_000,
        ..Mix::default()
    });
    // With replaces (size decreases and price moves) in the mix.
    allocates_nothing_after_warm_up(Mix {
        commands: 300_000,
        cancel_pct: 24,
        replace_pct: 20,
        ..Mix::default()
    });
}

#[test]
fn margin_checked_workload_allocates_nothing_after_warm_up() {
    allocates_nothing_after_warm_up(Mix {
        commands: 300_000,
        margin: true,
        ..Mix::default()
    });
}

/// Warms up on 50,000 commands, then counts allocations over the rest.
fn allocates_nothing_after_warm_up(mix: Mix) {
    let w = workload::generate(&mix);
    let at_start = allocations();
    let mut engine = Engine::new(workload::engine_config(&mix));
    assert!(
        allocations() > at_start,
        "the counter must see start-up allocations"
    );
    let mut sink = CountSink::default();
    let (warm, measured) = w.commands.split_at(50_000);
    for c in w.setup.iter().chain(warm) {
        engine.apply(c, &mut sink);
    }
    let before = allocations();
    let events_before = sink.0;
    for c in measured {
        engine.apply(c, &mut sink);
    }
    let allocations = allocations() - before;
    let events = sink.0 - events_before;
    eprintln!(
        "{} commands, {events} events, {allocations} allocations after warm-up",
        measured.len()
    );
    assert!(
        events > measured.len() as u64,
        "the workload must actually trade and rest orders"
    );
    assert_eq!(
        allocations, 0,
        "allocations per command must be zero in steady state"
    );
}

/// A liquidation cascade (a 30% crash in 3 gaps over 20,000 accounts, with an empty
/// insurance fund so that backstops and auto-deleveraging run too) allocates nothing
/// once the population is set up, in both ADL modes.
#[test]
fn liquidation_cascade_allocates_nothing_after_warm_up() {
    use cascade_bench::cascade::{self, Population, Tally};
    // Queue and pro-rata ADL with an empty fund; then a funded fund that takes over,
    // unwinds and deleverages itself, with a fifth of the traders holding stop-losses
    // that fire during the crash.
    for (adl, fund_bps, stops_pct) in [
        (cascade_core::AdlMode::Queue, 0, 0),
        (cascade_core::AdlMode::ProRata, 0, 0),
        (cascade_core::AdlMode::Queue, 10, 20),
    ] {
        let mut pop = Population::new(20_000);
        pop.adl = adl;
        pop.fund_bps = fund_bps;
        pop.stops_pct = stops_pct;
        let setup = cascade::sequence(pop.setup(), 1);
        let marks = cascade::mark_commands(
            &cascade::crash_path(pop.start, 30, 3),
            setup.len() as u64 + 1,
        );
        let mut engine = Engine::new(pop.engine_config());
        let mut tally = Tally::default();
        for c in &setup {
            engine.apply(c, &mut tally);
        }
        let before = allocations();
        for c in &marks {
            engine.apply(c, &mut tally);
        }
        let allocations = allocations() - before;
        eprintln!("{adl:?}: {tally:?}, {allocations} allocations during the cascade");
        assert!(
            tally.liquidations > 1_000 && tally.backstops > 0 && tally.adl_fills > 0,
            "{tally:?}"
        );
        assert!(stops_pct == 0 || tally.stops_triggered > 100, "{tally:?}");
        assert_eq!(allocations, 0, "the cascade must not allocate");
    }
}

/// The LOBSTER workload (the commands of the AMZN level-5 replay, as `latency --lobster`
/// sends them) allocates nothing after 20,000 warm-up commands. Reads
/// `../shared/data/lobster/` (or `CASCADE_LOBSTER_DIR`); skipped, saying so, without it
/// unless `CASCADE_REQUIRE_DATA` is set.
#[test]
fn lobster_workload_allocates_nothing_after_warm_up() {
    let dir = std::env::var_os("CASCADE_LOBSTER_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/lobster"),
        Into::into,
    );
    let stem = "AMZN_2012-06-21_34200000_57600000";
    let messages = dir.join(format!("{stem}_message_5.csv"));
    let book = dir.join(format!("{stem}_orderbook_5.csv"));
    if !messages.exists() {
        assert!(
            std::env::var_os("CASCADE_REQUIRE_DATA").is_none(),
            "CASCADE_REQUIRE_DATA is set but {} is missing",
            messages.display()
        );
        eprintln!("SKIPPED: {} not found", messages.display());
        return;
    }
    let (msgs, rows) = cascade_bench::lobster::load(&messages, &book).expect("LOBSTER files");
    let report = cascade_bench::lobster::replay(&msgs, &rows).expect("replay");
    let (setup, rest) = report.commands.split_at(report.setup_len);
    let (warm, measured) = rest.split_at(20_000);
    let mut engine = Engine::new(report.config);
    let mut sink = CountSink::default();
    for c in setup.iter().chain(warm) {
        engine.apply(c, &mut sink);
    }
    let before = allocations();
    for c in measured {
        engine.apply(c, &mut sink);
    }
    let allocations = allocations() - before;
    eprintln!(
        "ran on {}: {} commands after warm-up, {allocations} allocations",
        messages.display(),
        measured.len()
    );
    assert!(
        measured.len() > 100_000,
        "the replay must produce a real workload"
    );
    assert_eq!(allocations, 0, "the LOBSTER workload must not allocate");
}
