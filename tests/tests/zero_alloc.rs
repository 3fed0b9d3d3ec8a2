//! A counting global allocator proves that, after warm-up, applying commands of the mixed
//! workload performs no heap allocation at all.

use cascade_bench::workload::{self, Mix};
use cascade_core::{Engine, Event, EventSink};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts every allocation and reallocation made by this test binary.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator with the caller's arguments
// unchanged; the only addition is a relaxed counter increment, which cannot affect the
// allocation's validity.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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
    let mix = Mix {
        commands: 300_000,
        ..Mix::default()
    };
    let w = workload::generate(&mix);
    let at_start = ALLOCATIONS.load(Ordering::Relaxed);
    let mut engine = Engine::new(workload::engine_config(&mix));
    assert!(
        ALLOCATIONS.load(Ordering::Relaxed) > at_start,
        "the counter must see start-up allocations"
    );
    let mut sink = CountSink::default();
    let (warm, measured) = w.commands.split_at(50_000);
    for c in w.setup.iter().chain(warm) {
        engine.apply(c, &mut sink);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let events_before = sink.0;
    for c in measured {
        engine.apply(c, &mut sink);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
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
