//! Interoperability with an independent FIX engine: QuickFIX (its Python wheel, pinned
//! by hash in `tests/fix/requirements.txt`) logs on to a real gateway as two sessions
//! and runs every scenario of `tests/fix/quickfix_interop.py`; the gateway is then
//! stopped, restarted on the same journal, and QuickFIX reconnects with its stored
//! sequence numbers.
//!
//! Needs `CASCADE_QUICKFIX_PYTHON` (the venv's python, set by `.ci/run`); without it
//! the test says so and passes, unless `CASCADE_REQUIRE_QUICKFIX=1`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{config, temp_dir, Gateway};

fn run_phase(python: &str, gw: &Gateway, store: &std::path::Path, phase: &str) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fix/quickfix_interop.py"
    );
    let mut child = Command::new(python)
        .args([
            script,
            "--host",
            "127.0.0.1",
            "--port",
            &gw.fix.port().to_string(),
        ])
        .arg("--store")
        .arg(store)
        .args(["--phase", phase])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the QuickFIX client");
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("QuickFIX phase {phase} ran past 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- QuickFIX {phase} ---\n{text}");
    assert!(
        out.status.success(),
        "QuickFIX phase {phase} failed:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.ends_with("passed, 0 failed")),
        "{text}"
    );
    text
}

#[test]
fn quickfix_runs_every_scenario_and_reconnects_after_a_restart() {
    let Ok(python) = std::env::var("CASCADE_QUICKFIX_PYTHON") else {
        assert!(
            std::env::var("CASCADE_REQUIRE_QUICKFIX").is_err(),
            "CASCADE_REQUIRE_QUICKFIX is set but CASCADE_QUICKFIX_PYTHON is not"
        );
        println!("skipped: CASCADE_QUICKFIX_PYTHON is not set (.ci/run sets it up)");
        return;
    };
    let dir = temp_dir("quickfix");
    let cfg = config(&dir, "batch", 0);
    let store = dir.join("quickfix");
    let gw = Gateway::start(&cfg);
    let before = run_phase(&python, &gw, &store, "before-restart");
    assert!(
        before.contains("ok resend_gap_fill") && before.contains("ok sequence_reset"),
        "{before}"
    );
    let (ok, err) = gw.stop();
    assert!(ok, "{err:?}");
    let gw = Gateway::start(&cfg);
    let after = run_phase(&python, &gw, &store, "after-restart");
    assert!(after.contains("ok reconnect"), "{after}");
    let (ok, _) = gw.stop();
    assert!(ok);
}
