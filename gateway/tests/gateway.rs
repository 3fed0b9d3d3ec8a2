//! End-to-end tests of the `cascade-gateway` process over loopback: binary order
//! entry, authorization, hostile input, market data, crash and restart, and load.
//! Each test starts its own gateway on free ports with a temporary journal.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use cascade_gateway::binary::client::Client;
use cascade_gateway::binary::{ClientMsg, ExecMsg, ServerMsg};
use common::{config, edit_config, raw_binary_logons, temp_dir, Gateway, Subscriber};

const WAIT: Duration = Duration::from_secs(10);

fn limit(cl: u64, market: u32, side: u8, price: i64, qty: i64) -> ClientMsg {
    ClientMsg::NewOrder {
        cl_ord_id: cl,
        market,
        side,
        ord_type: 2,
        tif: 1,
        flags: 0,
        stp: 1,
        price,
        stop_px: 0,
        qty,
    }
}

/// The next execution report, skipping heartbeats.
fn exec(c: &mut Client) -> ExecMsg {
    loop {
        match c.recv(WAIT).unwrap() {
            Some(ServerMsg::Exec(e)) => return e,
            Some(ServerMsg::Heartbeat) => {}
            other => panic!("expected an execution report, got {other:?}"),
        }
    }
}

fn next(c: &mut Client) -> ServerMsg {
    loop {
        match c.recv(WAIT).unwrap() {
            Some(ServerMsg::Heartbeat) => {}
            Some(m) => return m,
            None => panic!("nothing within {WAIT:?}"),
        }
    }
}

#[test]
fn orders_fill_cancel_and_sessions_act_only_on_their_own_accounts() {
    let dir = temp_dir("orders");
    let cfg = config(&dir, "batch", 0);
    let gw = Gateway::start(&cfg);
    let mut alice = gw.client("ALICE", "alice-demo");
    let mut bob = gw.client("BOB", "bob-demo");
    // ALICE rests a buy of 10 lots at 59000.0 (core units: price decimals 1).
    alice.send(&limit(11, 0, 1, 590_000, 10)).unwrap();
    let e = exec(&mut alice);
    assert_eq!(
        (e.exec_type, e.ord_status, e.cl_ord_id, e.leaves),
        (b'0', b'0', 11, 10)
    );
    let alice_order = e.order_id;
    // BOB sells 4 into it: both sides see the trade, ALICE partially filled.
    bob.send(&limit(21, 0, 2, 590_000, 4)).unwrap();
    let b1 = exec(&mut bob);
    assert_eq!(b1.exec_type, b'0');
    let b2 = exec(&mut bob);
    assert_eq!(
        (
            b2.exec_type,
            b2.ord_status,
            b2.last_px,
            b2.last_qty,
            b2.liquidity
        ),
        (b'F', b'2', 590_000, 4, 2)
    );
    let a2 = exec(&mut alice);
    assert_eq!(
        (
            a2.exec_type,
            a2.ord_status,
            a2.order_id,
            a2.cum,
            a2.leaves,
            a2.liquidity
        ),
        (b'F', b'1', alice_order, 4, 6, 1)
    );
    // BOB cannot cancel ALICE's order: to his session it does not exist.
    bob.send(&ClientMsg::Cancel {
        cl_ord_id: 22,
        orig_cl_ord_id: 11,
    })
    .unwrap();
    match next(&mut bob) {
        ServerMsg::CancelReject {
            cl_ord_id: 22,
            orig_cl_ord_id: 11,
            reason: 1,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    // ... and a non-admin cannot send admin commands.
    bob.send(&ClientMsg::Admin {
        command: 1,
        market: 0,
        account: u32::MAX,
        value: 500_000,
    })
    .unwrap();
    match next(&mut bob) {
        ServerMsg::AdminAck { result: 98, .. } => {}
        other => panic!("{other:?}"),
    }
    // ALICE replaces, then cancels her own order.
    alice
        .send(&ClientMsg::Replace {
            cl_ord_id: 12,
            orig_cl_ord_id: 11,
            price: 589_000,
            qty: 5,
        })
        .unwrap();
    let r = exec(&mut alice);
    assert_eq!(
        (
            r.exec_type,
            r.cl_ord_id,
            r.orig_cl_ord_id,
            r.price,
            r.leaves
        ),
        (b'5', 12, 11, 589_000, 5)
    );
    alice
        .send(&ClientMsg::Cancel {
            cl_ord_id: 13,
            orig_cl_ord_id: 12,
        })
        .unwrap();
    let c = exec(&mut alice);
    assert_eq!(
        (c.exec_type, c.ord_status, c.cl_ord_id, c.orig_cl_ord_id),
        (b'4', b'4', 13, 12)
    );
    // A wrong password is refused; the admin's right one is accepted and can move the mark.
    let wrong = Client::connect(gw.binary, "ALICE", "nope", 0)
        .err()
        .expect("wrong password refused");
    assert_eq!(wrong.kind(), std::io::ErrorKind::PermissionDenied);
    let mut admin = gw.client("ADMIN", "admin-demo");
    admin
        .send(&ClientMsg::Admin {
            command: 1,
            market: 0,
            account: u32::MAX,
            value: 595_000,
        })
        .unwrap();
    match next(&mut admin) {
        ServerMsg::AdminAck {
            result: 0,
            command_seq,
            ..
        } => assert!(command_seq > 0),
        other => panic!("{other:?}"),
    }
    // CAROL's account cancels on disconnect: her resting order goes when she does.
    let mut carol = gw.client("CAROL", "carol-demo");
    carol.send(&limit(31, 0, 1, 580_000, 3)).unwrap();
    assert_eq!(exec(&mut carol).exec_type, b'0');
    let mut sub = Subscriber::connect(gw.md, 0);
    sub.pump(Duration::from_millis(200));
    assert_eq!(sub.book.get(&(0, 1, 580_000)), Some(&(3, 1)));
    drop(carol);
    sub.pump(Duration::from_millis(500));
    assert_eq!(
        sub.book.get(&(0, 1, 580_000)),
        None,
        "cancelled on disconnect"
    );
    let m = gw.metrics();
    assert!(m.contains("cascade_cancel_on_disconnect_total 1"), "{m}");
    assert!(m.contains("cascade_logon_failures_total 1"), "{m}");
    assert!(
        m.contains("# TYPE cascade_journal_durable_lag gauge"),
        "{m}"
    );
    let (ok, err) = gw.stop();
    assert!(ok, "exit status: {err:?}");
    let last = err
        .iter()
        .find(|l| l.contains("event=final_snapshot seq="))
        .expect("final snapshot logged");
    let hash = |l: &str| {
        l.split("state_hash=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    // A restart recovers exactly the state the shutdown left.
    let gw = Gateway::start(&cfg);
    let log = gw.log_lines();
    let recovered = log
        .iter()
        .find(|l| l.contains("event=recovered"))
        .expect("recovery logged");
    assert_eq!(hash(recovered), hash(last), "{recovered} / {last}");
    assert!(
        recovered.contains("replayed=0"),
        "recovered from the shutdown snapshot: {recovered}"
    );
    let (ok, _) = gw.stop();
    assert!(ok);
}

#[test]
fn hostile_input_is_refused_and_other_sessions_carry_on() {
    let dir = temp_dir("hostile");
    let gw = Gateway::start(&config(&dir, "never", 0));
    let mut alice = gw.client("ALICE", "alice-demo");
    let closed = |mut s: std::net::TcpStream| {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut b = [0u8; 4096];
        let start = Instant::now();
        loop {
            match s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return start.elapsed() < WAIT,
            }
        }
    };
    // Garbage on the binary port: not SBE framing → closed.
    let mut s = std::net::TcpStream::connect(gw.binary).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(closed(s), "garbage closes the binary connection");
    // An oversized frame announcement → closed.
    let mut s = std::net::TcpStream::connect(gw.binary).unwrap();
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0x5b, 0xe0, 0, 0])
        .unwrap();
    assert!(closed(s), "oversized frame closes");
    // An order before logon → LogonReject and close.
    let mut s = std::net::TcpStream::connect(gw.binary).unwrap();
    let mut msg = Vec::new();
    limit(1, 0, 1, 590_000, 1).encode(&mut msg);
    s.write_all(&msg).unwrap();
    assert!(closed(s), "orders before logon close");
    // Half a frame, then an abrupt disconnect.
    let mut s = std::net::TcpStream::connect(gw.binary).unwrap();
    s.write_all(&msg[..10]).unwrap();
    drop(s);
    // FIX garbage: ignored, no answer, and a huge field closes.
    let mut s = std::net::TcpStream::connect(gw.fix).unwrap();
    s.write_all(b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01")
        .unwrap();
    s.write_all(format!("8=FIX.4.4\x019={}\x01", 1 << 20).as_bytes())
        .unwrap();
    assert!(closed(s), "an oversized FIX message closes");
    // Through all that, ALICE's session works.
    alice.send(&limit(5, 0, 1, 590_000, 1)).unwrap();
    assert_eq!(exec(&mut alice).exec_type, b'0');
    // Malformed order fields are rejected without reaching the engine.
    alice
        .send(&ClientMsg::NewOrder {
            cl_ord_id: 6,
            market: 0,
            side: 9,
            ord_type: 2,
            tif: 1,
            flags: 0,
            stp: 1,
            price: 1,
            stop_px: 0,
            qty: 1,
        })
        .unwrap();
    let e = exec(&mut alice);
    assert_eq!((e.exec_type, e.reject_code), (b'8', 99));
    // An engine reject keeps its reason: price off tick (tick 5).
    alice.send(&limit(7, 0, 1, 590_001, 1)).unwrap();
    let e = exec(&mut alice);
    assert_eq!(e.exec_type, b'8');
    let (ok, _) = gw.stop();
    assert!(ok);
}

#[test]
fn market_data_rebuilds_the_book_and_repairs_gaps_while_a_reader_stalls() {
    let dir = temp_dir("md");
    let gw = Gateway::start(&config(&dir, "never", 0));
    let mut early = Subscriber::connect(gw.md, 0);
    early.pump(Duration::from_millis(200));
    // A stalled reader: subscribes, never reads.
    let stalled = Subscriber::connect(gw.md, 0);
    let mut alice = gw.client("ALICE", "alice-demo");
    let mut bob = gw.client("BOB", "bob-demo");
    let mut cl = 100;
    for i in 0..2_000i64 {
        cl += 1;
        let price = 590_000 + (i % 50) * 5;
        alice.queue(&limit(cl, 0, 1, price - 1_000, 1 + i % 3));
        bob.queue(&limit(cl, 0, 2, price, 1 + i % 4));
        if i % 100 == 99 {
            alice.flush().unwrap();
            bob.flush().unwrap();
            early.pump(Duration::from_millis(5));
        }
    }
    alice.flush().unwrap();
    bob.flush().unwrap();
    // Every order is answered, so everything is published.
    let mut answered = 0;
    while answered < 2_000 {
        if let ServerMsg::Exec(e) = next(&mut alice) {
            if e.exec_type == b'0' || e.exec_type == b'8' {
                answered += 1;
            }
        }
    }
    early.pump(Duration::from_millis(500));
    assert!(!early.gap, "no gaps on a live subscriber");
    let mut late = Subscriber::connect(gw.md, 0);
    late.pump(Duration::from_millis(500));
    assert!(!late.book.is_empty());
    assert_eq!(
        early.book, late.book,
        "snapshot + incrementals equals a fresh snapshot"
    );
    // A subscriber asking from an old sequence number inside the retained window gets
    // exactly the frames from there on.
    let from = early.seq - 10;
    let mut repair = Subscriber::connect(gw.md, from);
    repair.pump(Duration::from_millis(300));
    assert!(!repair.gap);
    assert_eq!(repair.seq, early.seq);
    assert_eq!(
        repair.seen.get(&211),
        None,
        "repaired from the window, not a snapshot"
    );
    drop(stalled);
    let journal = gw.dir.clone();
    let (ok, _) = gw.stop();
    assert!(ok);
    // The engine's own book, rebuilt from the journal, is what the subscriber built.
    let engine = common::replay_journal(&journal);
    let mut book = std::collections::BTreeMap::new();
    for m in 0..2 {
        for (side, code) in [
            (cascade_gateway::core::Side::Buy, 1u8),
            (cascade_gateway::core::Side::Sell, 2),
        ] {
            engine.depth(
                cascade_gateway::core::MarketId(m),
                side,
                usize::MAX,
                |p, q, n| {
                    book.insert((m, code, p.0), (q.0, n));
                },
            );
        }
    }
    assert_eq!(early.book, book, "the feed's book equals the engine's");
}

#[test]
fn a_stalled_market_data_reader_is_cut_off_and_the_others_go_on() {
    let dir = temp_dir("md-stall");
    let path = config(&dir, "never", 0);
    edit_config(
        &path,
        &[("md_buffer_bytes = 4194304", "md_buffer_bytes = 65536")],
    );
    let gw = Gateway::start(&path);
    let mut alice = gw.client("ALICE", "alice-demo");
    let mut live = Subscriber::connect(gw.md, 0);
    let run = |alice: &mut Client, live: &mut Subscriber, base: u64| {
        let start = Instant::now();
        let mut cancels = 0;
        for i in 0..6_000u64 {
            let price = 500_000 + (i % 400) as i64 * 5;
            alice.queue(&limit(base + i, 0, 1, price, 1));
            alice.queue(&ClientMsg::Cancel {
                cl_ord_id: base + 100_000 + i,
                orig_cl_ord_id: base + i,
            });
            if i % 200 == 199 {
                alice.flush().unwrap();
                while let Some(m) = alice.recv(Duration::from_millis(1)).unwrap() {
                    cancels += usize::from(matches!(m, ServerMsg::Exec(e) if e.exec_type == b'4'));
                }
                live.pump(Duration::from_millis(1));
            }
        }
        alice.flush().unwrap();
        while cancels < 6_000 {
            if let ServerMsg::Exec(e) = next(alice) {
                cancels += usize::from(e.exec_type == b'4');
            }
        }
        start.elapsed()
    };
    let _ = run(&mut alice, &mut live, 1);
    let alone = run(&mut alice, &mut live, 1_000_000);
    // Now with a reader that subscribes and never reads.
    let stalled = Subscriber::connect(gw.md, 0);
    let with = run(&mut alice, &mut live, 2_000_000);
    live.pump(Duration::from_millis(300));
    let m = gw.metrics();
    assert!(m.contains("cascade_md_slow_disconnects_total 1"), "{m}");
    assert!(
        !live.gap && live.disconnected.is_none(),
        "the reading subscriber is untouched"
    );
    assert!(
        with < alone * 2 + Duration::from_millis(500),
        "order flow slowed: {alone:?} alone, {with:?} with a stalled reader"
    );
    drop(stalled);
    let (ok, _) = gw.stop();
    assert!(ok);
}

#[test]
fn a_killed_gateway_restarts_with_every_acknowledged_order() {
    let dir = temp_dir("crash");
    let cfg = config(&dir, "batch", 0);
    let gw = Gateway::start(&cfg);
    let mut alice = gw.client("ALICE", "alice-demo");
    let mut acked = Vec::new();
    for i in 0..300i64 {
        alice
            .send(&limit(1_000 + i as u64, 0, 1, 500_000 + i * 5, 1 + i % 7))
            .unwrap();
        if i % 3 == 0 {
            let e = exec(&mut alice);
            acked.push((e.price, e.qty));
        }
    }
    // Killed with about 200 orders in flight.
    let resume = alice.next_seq;
    gw.kill();
    let gw = Gateway::start(&cfg);
    let mut sub = Subscriber::connect(gw.md, 0);
    sub.pump(Duration::from_millis(500));
    for (price, qty) in &acked {
        let (q, _) = sub.book.get(&(0, 1, *price)).copied().unwrap_or((0, 0));
        assert!(
            q >= *qty,
            "acknowledged order at {price} lost after the kill"
        );
    }
    // The session resumes from the last report it saw: what was stored after it comes
    // back numbered on from there, with no gap and no repeat, then live traffic.
    let mut again = Client::connect(gw.binary, "ALICE", "alice-demo", resume).unwrap();
    let mut expect = resume;
    while let Some(m) = again.recv(Duration::from_millis(300)).unwrap() {
        if let Some(s) = m.seq() {
            assert_eq!(
                s, expect,
                "replayed sequence numbers are dense from the resume point"
            );
            expect += 1;
        }
        if let ServerMsg::Exec(e) = m {
            if e.exec_type == b'0' {
                let (q, _) = sub.book.get(&(0, 1, e.price)).copied().unwrap_or((0, 0));
                assert!(
                    q >= e.qty,
                    "a replayed acknowledgement is in the recovered book"
                );
            }
        }
    }
    again.send(&limit(9_999, 0, 1, 480_000, 1)).unwrap();
    assert_eq!(
        exec(&mut again).seq,
        expect,
        "live numbering continues after the replay"
    );
    let (ok, _) = gw.stop();
    assert!(ok);
}

/// Orders each load client sends (20 clients: 500,000 in all by default).
fn load_orders() -> u64 {
    std::env::var("CASCADE_LOAD_ORDERS_PER_CLIENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25_000)
}

#[test]
fn twenty_clients_get_every_order_answered_once_and_the_journal_replays_to_the_same_state() {
    const CLIENTS: usize = 20;
    let per = load_orders();
    let dir = temp_dir("load");
    let gw = Gateway::start(&config(&dir, "batch", CLIENTS));
    let started = Instant::now();
    let addr = gw.binary;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr, &format!("LOAD{i:02}"), "alice-demo", 0).unwrap();
                let side = if i % 2 == 0 { 1 } else { 2 };
                let mut answered = std::collections::HashMap::new();
                let mut sent = 0u64;
                while sent < per || (answered.len() as u64) < per {
                    // Keep at most 2,000 orders in flight: the gateway's rings and the
                    // test's memory stay bounded.
                    while sent < per && sent - answered.len() as u64 * u64::from(sent > 0) < 2_000 {
                        let k = sent as i64;
                        let price = if side == 1 {
                            599_000 - (k % 40) * 5
                        } else {
                            599_000 + (k % 40) * 5 - 100
                        };
                        c.queue(&limit(
                            sent + 1,
                            (k % 2) as u32,
                            side,
                            price + if k % 2 == 1 { -300_000 } else { 0 },
                            1 + k % 3,
                        ));
                        sent += 1;
                        if sent % 64 == 0 {
                            break;
                        }
                    }
                    c.flush().unwrap();
                    while let Some(m) = c.recv(Duration::from_millis(1)).unwrap() {
                        if let ServerMsg::Exec(e) = m {
                            if e.exec_type == b'0' || e.exec_type == b'8' {
                                *answered.entry(e.cl_ord_id).or_insert(0u32) += 1;
                            }
                        }
                    }
                }
                assert!(
                    answered.values().all(|&n| n == 1),
                    "an order was answered twice"
                );
                answered.len() as u64
            })
        })
        .collect();
    let acked: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(acked, per * CLIENTS as u64);
    println!("load: {acked} orders from {CLIENTS} clients answered in {secs:.1} s ({:.0} orders/s, fsync per batch)", acked as f64 / secs);
    let dir_journal = gw.dir.clone();
    let (ok, err) = gw.stop();
    assert!(ok, "{err:?}");
    let line = err
        .iter()
        .find(|l| l.contains("event=final_snapshot"))
        .expect("final snapshot line");
    let hash = line.rsplit("state_hash=").next().unwrap().to_string();
    let last: u64 = line
        .split("seq=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Replay the journal from the start in a fresh engine: same state.
    let cfg = cascade_gateway::engine_file::read_engine_config(&dir_journal).unwrap();
    let mut engine = cascade_gateway::core::Engine::new(cfg);
    let mut events = Vec::new();
    let mut commands = 0u64;
    let mut jc = cascade_gateway::journal::JournalConfig::new(&dir_journal);
    jc.fsync = cascade_gateway::journal::FsyncPolicy::Never;
    let (journal, report) = cascade_gateway::journal::Journal::open(jc, |c| {
        events.clear();
        engine.apply(c, &mut events);
        commands += 1;
    })
    .unwrap();
    drop(journal);
    assert_eq!(report.last_seq, last);
    // Genesis: 2 markets (AddMarket, insurance for BTC, 2 marks) and 23 + 20 accounts
    // opened and funded; then exactly one command per order.
    let genesis = 2 + 1 + 2 + 2 * (3 + CLIENTS as u64);
    assert_eq!(
        commands,
        genesis + acked,
        "journal commands = genesis + acknowledged orders"
    );
    assert_eq!(format!("{:016x}", engine.state_hash()), hash);
}

/// Password checks run on their own thread: four logons being verified at once do not
/// hold up an order from a session already logged on (one check on the I/O thread
/// would have held it for its whole duration, four for four times that).
#[test]
fn logons_being_verified_do_not_stall_other_sessions() {
    let dir = temp_dir("auth-thread");
    let gw = Gateway::start(&config(&dir, "never", 4));
    let mut alice = gw.client("ALICE", "alice-demo");
    let hash = cascade_gateway::config::GatewayConfig::default_config().accounts[0]
        .password_hash
        .clone();
    let t = Instant::now();
    assert!(cascade_gateway::auth::verify(&hash, b"alice-demo"));
    let one_check = t.elapsed();
    let waiting = raw_binary_logons(gw.binary, 4);
    std::thread::sleep(Duration::from_millis(2));
    let t = Instant::now();
    alice.send(&limit(1, 0, 1, 590_000, 1)).unwrap();
    assert_eq!(exec(&mut alice).exec_type, b'0');
    let ack = t.elapsed();
    assert!(
        ack < one_check * 2,
        "ack took {ack:?} with four logons in check (one check: {one_check:?})"
    );
    drop(waiting);
    let (ok, _) = gw.stop();
    assert!(ok);
}

/// Throttles: past the soft rate orders are rejected with a reason while cancels still
/// go through; past the hard rate the session is logged out.
#[test]
fn throttles_reject_then_log_out_and_never_block_cancels() {
    let dir = temp_dir("throttle");
    let path = config(&dir, "never", 0);
    edit_config(
        &path,
        &[
            ("soft_orders_per_sec = 200000", "soft_orders_per_sec = 100"),
            ("hard_orders_per_sec = 400000", "hard_orders_per_sec = 300"),
        ],
    );
    let gw = Gateway::start(&path);
    let mut alice = gw.client("ALICE", "alice-demo");
    for i in 0..150u64 {
        alice.queue(&limit(1 + i, 0, 1, 500_000 + i as i64 * 5, 1));
    }
    alice.flush().unwrap();
    let (mut new, mut throttled) = (0, 0);
    while new + throttled < 150 {
        if let ServerMsg::Exec(e) = next(&mut alice) {
            match e.exec_type {
                b'0' => new += 1,
                b'8' => {
                    assert_eq!(e.reject_code, 99);
                    throttled += 1;
                }
                _ => {}
            }
        }
    }
    // The first second's window: 100 pass, 50 are refused.
    assert_eq!((new, throttled), (100, 50));
    // Cancels are never throttled.
    for i in 0..100u64 {
        alice.queue(&ClientMsg::Cancel {
            cl_ord_id: 1_000 + i,
            orig_cl_ord_id: 1 + i,
        });
    }
    alice.flush().unwrap();
    let mut cancelled = 0;
    while cancelled < 100 {
        if let ServerMsg::Exec(e) = next(&mut alice) {
            cancelled += usize::from(e.exec_type == b'4');
        }
    }
    // Past the hard rate (400 > 300 even if a new one-second window has begun): Logout
    // (reason 2) and the connection closes.
    for i in 0..400u64 {
        alice.queue(&limit(5_000 + i, 0, 1, 500_000, 1));
    }
    alice.flush().unwrap();
    let logout = loop {
        match alice.recv(WAIT) {
            Ok(Some(ServerMsg::Logout { reason })) => break Some(reason),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break None,
        }
    };
    assert_eq!(logout, Some(2), "logged out for the hard limit");
    // 50 soft rejects, then at least the orders past 300 in the window.
    let m = gw.metrics();
    let throttled: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("cascade_throttled_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(throttled >= 51, "{m}");
    let (ok, _) = gw.stop();
    assert!(ok);
}

/// One address cannot queue more password checks than `limits.checks_per_address`:
/// the logons past it are refused at once (binary LogonReject reason 2).
#[test]
fn an_address_cannot_queue_unbounded_password_checks() {
    let dir = temp_dir("checks");
    let path = config(&dir, "never", 8);
    edit_config(
        &path,
        &[("checks_per_address = 64 ", "checks_per_address = 2 ")],
    );
    let gw = Gateway::start(&path);
    let conns = raw_binary_logons(gw.binary, 8);
    let (mut accepted, mut refused) = (0, 0);
    for mut s in conns {
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut b = [0u8; 64];
        let n = s.read(&mut b).unwrap();
        match cascade_gateway::binary::frame::split(&b[..n], 4096) {
            cascade_gateway::binary::frame::Split::Frame { template: 101, .. } => accepted += 1,
            cascade_gateway::binary::frame::Split::Frame {
                template: 102, len, ..
            } => {
                assert_eq!(b[len - 8], 2, "reason 2");
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        accepted >= 2 && refused >= 1,
        "accepted {accepted}, refused {refused}"
    );
    let (ok, _) = gw.stop();
    assert!(ok);
}
