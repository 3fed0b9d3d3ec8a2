//! Crash test of the journal: `cascade-bench record` on the leveraged workload is killed
//! (SIGKILL after a random delay, or its own abort right after its K-th durable batch),
//! then the journal is recovered. Every time: nothing acknowledged is lost (the
//! recovered last sequence is at least the last `durable seq` the child printed), and
//! nothing is invented (the recovered commands are exactly the workload's first ones).
//! 50 kills by default; `CASCADE_CRASH_RUNS` for more.

use cascade_bench::workload::{self, Mix};
use cascade_gateway::journal::{Journal, JournalConfig};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const COMMANDS: usize = 300_000;

fn runs() -> u64 {
    std::env::var("CASCADE_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// Starts `record`, kills it as `run` says, and returns the last durable sequence it
/// printed.
fn record_and_kill(dir: &PathBuf, run: u64, rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let by_abort = run % 2 == 0;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cascade-bench"));
    cmd.arg("record")
        .arg(dir)
        .args(["--leveraged", "--commands", &COMMANDS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if by_abort {
        cmd.args(["--kill-after-durable", &(1 + *rng % 40).to_string()]);
    }
    let mut child = cmd.spawn().expect("record starts");
    let stdout = child.stdout.take().expect("piped");
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut durable = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("durable seq=") {
                durable = n.parse().expect("a sequence number");
                let _ = first_tx.send(());
            }
        }
        durable
    });
    if !by_abort {
        // Writing takes tens of milliseconds after a generation phase whose length
        // depends on the machine: kill a random 0-15 ms after the first durable batch,
        // so the kill lands while batches are being written and synced.
        let _ = first_rx.recv_timeout(Duration::from_secs(30));
        std::thread::sleep(Duration::from_micros(*rng % 15_000));
        let _ = child.kill();
    }
    let _ = child.wait();
    reader.join().expect("reader")
}

#[test]
fn no_acknowledged_command_is_lost_and_none_is_invented() {
    let mix = Mix {
        commands: COMMANDS,
        margin: true,
        ..Mix::default()
    };
    let w = workload::generate(&mix);
    let expected: Vec<_> = w.setup.into_iter().chain(w.commands).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (mut torn, mut mid_run) = (0, 0);
    for run in 0..runs() {
        let dir = std::env::temp_dir().join(format!("cascade-crash-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let durable = record_and_kill(&dir, run, &mut rng);
        if !dir.exists() {
            continue; // killed before the journal was created: nothing was acknowledged
        }
        let mut seen = Vec::new();
        let (journal, report) = Journal::open(JournalConfig::new(&dir), |c| seen.push(c.clone()))
            .unwrap_or_else(|e| panic!("run {run}: recovery failed: {e}"));
        assert!(
            report.last_seq >= durable,
            "run {run}: durable {durable} printed, {} recovered",
            report.last_seq
        );
        assert_eq!(
            seen.as_slice(),
            &expected[..seen.len()],
            "run {run}: a recovered command differs from the one written"
        );
        torn += u64::from(report.torn.is_some());
        mid_run += u64::from((seen.len()) < expected.len());
        drop(journal);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    println!("{} kills: {mid_run} mid-run, {torn} torn tails cut", runs());
    assert!(mid_run > runs() / 2, "most kills must land while writing");
}
