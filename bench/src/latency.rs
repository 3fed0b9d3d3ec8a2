//! Open-loop latency: a generator thread offers commands at a fixed rate through a
//! bounded ring to a pinned engine thread, and every command's latency is measured from
//! its *intended* send time (`start + i / rate`), not from when it was actually sent, so
//! a stalled engine is charged for the queue it builds up (coordinated omission
//! corrected). Latencies go into an `hdrhistogram` in nanoseconds.

use cascade_core::{Command, Engine, Event, EventSink};
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ring slots between generator and engine (a power of two; full ring = back-pressure).
pub const RING_CAPACITY: usize = 1 << 16;

/// Counts events without keeping them.
#[derive(Default)]
pub struct Count(pub u64);

impl EventSink for Count {
    fn emit(&mut self, _: Event) {
        self.0 += 1;
    }
}

/// The result of one open-loop run.
pub struct RateResult {
    /// Offered commands per second.
    pub rate: u64,
    /// Latency from intended send time to the end of `apply`, ns.
    pub latency: Histogram<u64>,
    /// Time inside `apply` alone, ns.
    pub service: Histogram<u64>,
    /// Commands the generator found the ring full for (it then waited: back-pressure).
    pub ring_full: u64,
}

/// A latency histogram, 1 ns to 60 s at three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// The machine's cores, read once: `get_core_ids` reports only the calling thread's
/// affinity, so after the engine thread pins itself to core 0 a later call (and every
/// thread it spawns, which inherits the mask) would see core 0 alone and the generator
/// would share the engine's core.
fn cores() -> &'static [core_affinity::CoreId] {
    static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// Pins the calling thread to `core` if the machine has it; returns whether it did.
fn pin(core: usize) -> bool {
    cores()
        .get(core)
        .copied()
        .is_some_and(core_affinity::set_for_current)
}

/// Runs `commands` (after `setup`, unmeasured) on a fresh engine at `rate` commands/s.
/// With `engine: None` the engine thread only takes indices off the ring: the harness's
/// own floor (clock reads, ring hand-off between cores), measured the same way.
pub fn run(
    engine: Option<Engine>,
    setup: &[Command],
    commands: &Arc<Vec<Command>>,
    rate: u64,
) -> RateResult {
    let _ = cores(); // before anything is pinned
    let ring: Arc<ArrayQueue<u32>> = Arc::new(ArrayQueue::new(RING_CAPACITY));
    let period_ns = 1e9 / rate as f64;
    let n = commands.len();
    let start = Instant::now() + Duration::from_millis(20);
    let intended = move |i: usize| start + Duration::from_nanos((i as f64 * period_ns) as u64);

    let producer = {
        let ring = Arc::clone(&ring);
        std::thread::spawn(move || {
            pin(1);
            let mut full = 0u64;
            for i in 0..n {
                let due = intended(i);
                while Instant::now() < due {
                    std::hint::spin_loop();
                }
                let mut item = i as u32;
                while let Err(back) = ring.push(item) {
                    full += 1;
                    item = back;
                    std::hint::spin_loop();
                }
            }
            full
        })
    };

    pin(0);
    let mut engine = engine;
    let mut sink = Count::default();
    if let Some(engine) = engine.as_mut() {
        for c in setup {
            engine.apply(c, &mut sink);
        }
    }
    let (mut latency, mut service) = (histogram(), histogram());
    let mut done = 0;
    while done < n {
        let Some(i) = ring.pop() else {
            std::hint::spin_loop();
            continue;
        };
        let i = i as usize;
        let t0 = Instant::now();
        if let Some(engine) = engine.as_mut() {
            engine.apply(&commands[i], &mut sink);
        }
        let t1 = Instant::now();
        service.saturating_record(t1.duration_since(t0).as_nanos() as u64);
        latency.saturating_record(t1.saturating_duration_since(intended(i)).as_nanos() as u64);
        done += 1;
    }
    let ring_full = producer.join().expect("generator thread");
    RateResult {
        rate,
        latency,
        service,
        ring_full,
    }
}

/// The percentiles printed for each histogram.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];

/// One line: `p50=… p90=… p99=… p99.9=… p99.99=… max=…` (ns).
pub fn summary(h: &Histogram<u64>) -> String {
    let mut parts: Vec<String> = PERCENTILES
        .iter()
        .map(|&p| format!("p{p}={}", h.value_at_percentile(p)))
        .collect();
    parts.push(format!("max={}", h.max()));
    parts.join(" ")
}

/// HdrHistogram's text percentile distribution (`.hgrm`), values in microseconds.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    let mut total = 0u64;
    for v in h.iter_quantiles(1) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:.2}", 1.0 / (1.0 - q))
        } else {
            "inf".to_owned()
        };
        let _ = writeln!(
            out,
            "{:12.3} {:14.12} {:10} {:>14}",
            v.value_iterated_to() as f64 / 1000.0,
            q,
            total,
            inv
        );
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n#[Max     = {:12.3}, Total count    = {:12}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0,
        h.max() as f64 / 1000.0,
        h.len()
    );
    out
}
