//! `cascade-bench lab` and `cascade-bench risk-report` as a user runs them: the summary
//! lines' keys (a contract), errors for bad input, and the report opened in headless
//! Chromium with every plot non-empty.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cascade-bench"))
}

fn stdout_of(args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn keys(line: &str) -> Vec<&str> {
    line.split(' ')
        .map(|kv| kv.split('=').next().unwrap())
        .collect()
}

#[test]
fn lab_run_prints_one_summary_line_per_mode_with_the_documented_keys() {
    let (ok, out, err) = stdout_of(&[
        "lab",
        "run",
        "--accounts",
        "2000",
        "--steps",
        "5",
        "--settle",
        "2",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("mode=")).collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        assert_eq!(
            keys(l),
            [
                "mode",
                "steps",
                "liquidations",
                "liquidated_notional",
                "backstop_notional",
                "pre_liquidations",
                "pre_liquidated_notional",
                "stops",
                "adl_fills",
                "adl_notional",
                "bad_debt",
                "peak_liquidations",
                "start_mark",
                "index_low",
                "mark_low",
                "amplification",
                "first_liquidation_step",
                "first_adl_step",
                "fund_start",
                "fund_low",
                "report_hash",
                "ms"
            ]
        );
    }
}

#[test]
fn lab_refuses_bad_input_with_a_message_and_explains_itself() {
    let (ok, _, err) = stdout_of(&["lab", "run", "--refill-bps", "lots"]);
    assert!(!ok);
    assert!(err.contains("--refill-bps"), "{err}");
    let (ok, _, err) = stdout_of(&["lab", "contagion", "--markets", "1"]);
    assert!(!ok && err.contains("--markets must be 2..=16"), "{err}");
    let (ok, _, err) = stdout_of(&["lab", "nonsense"]);
    assert!(!ok && err.contains("nonsense"), "{err}");
    let (ok, out, _) = stdout_of(&["lab", "--help"]);
    assert!(ok);
    for sub in ["run", "distance", "warning", "whatif", "oct10", "contagion"] {
        assert!(out.contains(sub), "help lists {sub}");
    }
}

fn prices() -> Option<PathBuf> {
    let dir = std::env::var_os("CASCADE_CRYPTO_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/crypto"),
        PathBuf::from,
    );
    let p = dir.join("prices");
    p.join("BTCUSD_PERP-1m-2025-10-10.csv")
        .exists()
        .then_some(p)
}

/// Every `<figure>` of the page holds an SVG with drawn data: a polyline with points, or
/// a bar (a `rect` other than the background and legend swatches) of non-zero height.
fn figures_with_content(html: &str) -> (usize, usize) {
    let figures: Vec<&str> = html.split("<figure").skip(1).collect();
    let drawn = figures
        .iter()
        .filter(|f| {
            let f = &f[..f.find("</figure>").unwrap_or(f.len())];
            let line = f.split("<polyline").skip(1).any(|p| {
                p.split("points=\"")
                    .nth(1)
                    .is_some_and(|pts| pts.split(' ').count() >= 2 && !pts.starts_with('"'))
            });
            let bar = f.split("<rect").skip(1).any(|r| {
                !r.contains("fill=\"white\"")
                    && !r.contains("height=\"8\"")
                    && r.split("height=\"")
                        .nth(1)
                        .and_then(|h| h.split('"').next())
                        .and_then(|h| h.parse::<f64>().ok())
                        .is_some_and(|h| h > 0.0)
            });
            line || bar
        })
        .count();
    (figures.len(), drawn)
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
}

#[test]
fn the_risk_report_is_self_contained_and_opens_in_headless_chromium() {
    let out = std::env::temp_dir().join(format!("cascade-risk-report-{}", std::process::id()));
    let mut args = vec!["risk-report", "--accounts", "2000", "--out"];
    let out_s = out.to_string_lossy().to_string();
    args.push(&out_s);
    // Always named, so the binary reads exactly what this test expects (found, or a
    // directory that cannot exist).
    let prices = prices();
    let prices_s = prices.as_ref().map_or_else(
        || out.join("no-such-prices").to_string_lossy().to_string(),
        |p| p.to_string_lossy().to_string(),
    );
    args.extend(["--prices", prices_s.as_str()]);
    let (ok, stdout, err) = stdout_of(&args);
    assert!(ok, "{err}");
    let last = stdout.lines().last().unwrap();
    assert_eq!(keys(last), ["report", "plots", "scenario_hash"]);
    let expected = if prices.is_some() { 11 } else { 10 };
    assert!(last.contains(&format!("plots={expected} ")), "{last}");
    println!("ran with prices: {prices:?}; {last}");
    let html_path = out.join("risk-report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "nothing fetched"
    );
    assert!(!html.contains("<script"), "no script");
    assert_eq!(
        figures_with_content(&html),
        (expected, expected),
        "every plot draws data"
    );
    assert_eq!(
        std::fs::read_dir(out.join("risk")).unwrap().count(),
        expected
    );
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CASCADE_REQUIRE_CHROMIUM").is_none(),
            "CASCADE_REQUIRE_CHROMIUM is set but no chromium is on PATH"
        );
        println!(
            "SKIPPED the browser check: no chromium on PATH (Debian: apt-get install chromium)"
        );
        return;
    };
    let mut child = Command::new(&browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html_path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // Read the DOM while chromium writes it (a full pipe would stall it).
    let mut pipe = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut dom = Vec::new();
        std::io::Read::read_to_end(&mut pipe, &mut dom).map(|_| dom)
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dom = reader.join().unwrap().expect("DOM read");
    let dom = String::from_utf8_lossy(&dom);
    assert!(
        dom.contains("Cascade risk report"),
        "chromium rendered the page"
    );
    assert_eq!(
        figures_with_content(&dom),
        (expected, expected),
        "every plot has content in the DOM"
    );
    let _ = std::fs::remove_dir_all(&out);
}
