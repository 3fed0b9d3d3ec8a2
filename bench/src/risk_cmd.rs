//! `cascade-bench risk-report`: the lab's studies of one scenario as a self-contained
//! HTML page with plots.

use cascade_bench::risk_report::{self, ReportSetup};
use clap::Parser;
use std::path::PathBuf;
use std::time::Instant;

/// Runs the default scenario (leverage clustered at 5×, 10×, 20×, 50×; stops on;
/// endogenous marks) through every study of the lab and writes OUT/risk-report.html
/// (self-contained: inline SVG, nothing fetched) and OUT/risk/*.svg. The last line is
/// `report=PATH plots=N scenario_hash=HASH`.
#[derive(Parser, Debug)]
#[command(name = "cascade-bench risk-report")]
struct Args {
    /// Output directory.
    #[arg(long, default_value = "target/risk-report")]
    out: PathBuf,
    /// Accounts in the population (the contagion population has half as many).
    #[arg(long, default_value_t = 20_000)]
    accounts: u32,
    /// Population seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Index fall of the shock, bps.
    #[arg(long, default_value_t = 1_000)]
    move_bps: u32,
    /// Recorded BTC one-minute paths for the early-warning study (default
    /// $CASCADE_CRYPTO_DIR/prices, else ../shared/data/crypto/prices; skipped if absent).
    #[arg(long)]
    prices: Option<PathBuf>,
}

/// Entry point: `args` are the words after `risk-report`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let words = std::iter::once("risk-report".to_string()).chain(args.iter().cloned());
    let a = match Args::try_parse_from(words) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            print!("{e}");
            return Ok(());
        }
        Err(e) => return Err(e.to_string().trim_end().to_string()),
    };
    let mut setup = ReportSetup::clustered(a.accounts.max(1_000));
    setup.pop.seed = a.seed;
    setup.move_bps = a.move_bps.clamp(1, 9_000);
    let prices = a.prices.unwrap_or_else(|| {
        std::env::var_os("CASCADE_CRYPTO_DIR")
            .map_or_else(|| PathBuf::from("../shared/data/crypto"), PathBuf::from)
            .join("prices")
    });
    if prices.is_dir() {
        println!("early warning on {}", prices.display());
        setup.prices = Some(prices);
    } else {
        println!("early warning skipped: {} not found", prices.display());
    }
    let t = Instant::now();
    let w = risk_report::write(&setup, &a.out)?;
    println!("wrote in {:.1} s", t.elapsed().as_secs_f64());
    println!(
        "report={} plots={} scenario_hash={:016x}",
        w.html.display(),
        w.plots,
        w.scenario_hash
    );
    Ok(())
}
