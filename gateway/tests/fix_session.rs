//! The FIX 4.4 session layer against hostile and mistaken counterparties, each case
//! with the spec's answer: ignore, Reject (373 with 371), Logout, ResendRequest, or
//! close; other sessions carry on. A raw client builds the bytes, so every rule can be
//! broken on purpose.

mod common;

use common::{config, tag, temp_dir, Gateway, RawFix};

fn new_order(cl: &str) -> Vec<(u32, &str)> {
    vec![
        (11, cl),
        (55, "BTC-PERP"),
        (54, "1"),
        (38, "0.001"),
        (40, "2"),
        (44, "59000.0"),
        (59, "1"),
        (60, "20260101-00:00:00"),
    ]
}

#[test]
fn session_rules_get_the_spec_answers() {
    let dir = temp_dir("fix-session");
    let gw = Gateway::start(&config(&dir, "never", 0));

    // Logon and a good order.
    let mut a = RawFix::connect(gw.fix, "ALICE");
    let logon = a.logon("alice-demo");
    assert_eq!(tag(&logon, 35), Some("A"), "{logon:?}");
    a.send("D", &new_order("1"));
    let er = a.recv_app().unwrap();
    assert_eq!(
        (tag(&er, 35), tag(&er, 150), tag(&er, 11)),
        (Some("8"), Some("0"), Some("1"))
    );

    // A garbled message (bad checksum) is ignored: no answer, the sequence number is not
    // taken, and the same number is accepted next.
    let mut bytes = Vec::new();
    let mut w = cascade_gateway::fix::message::Writer::new(&mut bytes, "1");
    w.str(49, "ALICE")
        .str(56, "CASCADE")
        .int(34, a.seq)
        .str(
            52,
            &cascade_gateway::fix::time::format(cascade_gateway::fix::time::now_ms()),
        )
        .str(112, "X");
    w.finish();
    let n = bytes.len();
    bytes[n - 2] = if bytes[n - 2] == b'9' { b'8' } else { b'9' };
    a.raw(&bytes);
    a.send("1", &[(112, "PING")]);
    let m = a.recv().unwrap();
    assert_eq!(
        (tag(&m, 35), tag(&m, 112)),
        (Some("0"), Some("PING")),
        "{m:?}"
    );

    // Missing required tag → Reject 373=1 with 371=38.
    let mut body = new_order("2");
    body.retain(|f| f.0 != 38);
    a.send("D", &body);
    let r = a.recv_app().unwrap();
    assert_eq!(
        (tag(&r, 35), tag(&r, 373), tag(&r, 371)),
        (Some("3"), Some("1"), Some("38")),
        "{r:?}"
    );

    // Duplicate tag → Reject 373=13.
    let mut body = new_order("3");
    body.push((11, "4"));
    a.send("D", &body);
    let r = a.recv_app().unwrap();
    assert_eq!(
        (tag(&r, 35), tag(&r, 373)),
        (Some("3"), Some("13")),
        "{r:?}"
    );

    // Wrong type: a ClOrdID that is not a number → Reject 373=6, 371=11.
    a.send("D", &new_order("ABC"));
    let r = a.recv_app().unwrap();
    assert_eq!(
        (tag(&r, 373), tag(&r, 371)),
        (Some("6"), Some("11")),
        "{r:?}"
    );

    // Unknown symbol → BusinessMessageReject 380=2.
    let mut body = new_order("5");
    body[1] = (55, "NOPE");
    a.send("D", &body);
    let r = a.recv_app().unwrap();
    assert_eq!((tag(&r, 35), tag(&r, 380)), (Some("j"), Some("2")), "{r:?}");

    // Too high: the gateway asks for the gap.
    let expected = a.seq;
    a.seq += 5;
    a.send("1", &[(112, "GAP")]);
    let r = a.recv_app().unwrap();
    assert_eq!(
        (tag(&r, 35), tag(&r, 7), tag(&r, 16)),
        (Some("2"), Some(expected.to_string().as_str()), Some("0")),
        "{r:?}"
    );
    // Fill the gap (SequenceReset-GapFill in place of the missing messages).
    let to = (a.seq).to_string();
    a.send_with(
        "4",
        &[
            (34, expected.to_string()),
            (43, "Y".into()),
            (
                122,
                cascade_gateway::fix::time::format(cascade_gateway::fix::time::now_ms()),
            ),
        ],
        &[(123, "Y"), (36, &to)],
    );
    a.seq -= 1; // the gap fill reused an old number
    a.send("1", &[(112, "AFTER")]);
    let m = a.recv().unwrap();
    assert_eq!(tag(&m, 112), Some("AFTER"), "{m:?}");

    // Another session, meanwhile, is unaffected by all of this; then it breaks rules.
    let mut b = RawFix::connect(gw.fix, "BOB");
    assert_eq!(tag(&b.logon("bob-demo"), 35), Some("A"));
    // Wrong CompID → Reject 373=9, then Logout.
    b.send_with("1", &[(49, "MALLORY".into())], &[(112, "X")]);
    let r = b.recv_app().unwrap();
    assert_eq!((tag(&r, 35), tag(&r, 373)), (Some("3"), Some("9")), "{r:?}");
    assert_eq!(tag(&b.recv_app().unwrap(), 35), Some("5"));
    assert!(b.closed());

    // MsgSeqNum too low without PossDupFlag → Logout naming the numbers.
    let mut b = RawFix::connect(gw.fix, "BOB");
    b.seq = 100;
    let l = b.logon("bob-demo");
    assert_eq!(tag(&l, 35), Some("A"));
    let _ = b.recv_app(); // the ResendRequest for 3..99
    b.seq = 1; // below the expected 2 (the refused message did not take its number)
    b.send("1", &[(112, "LOW")]);
    let r = b.recv_app().unwrap();
    assert_eq!(tag(&r, 35), Some("5"));
    assert!(tag(&r, 58).unwrap().contains("MsgSeqNum too low"), "{r:?}");

    // SendingTime far off → Reject 373=10 then Logout.
    let mut c = RawFix::connect(gw.fix, "CAROL");
    assert_eq!(tag(&c.logon("carol-demo"), 35), Some("A"));
    c.send_with(
        "1",
        &[(52, "20200101-00:00:00.000".into())],
        &[(112, "OLD")],
    );
    let r = c.recv_app().unwrap();
    assert_eq!(
        (tag(&r, 35), tag(&r, 373)),
        (Some("3"), Some("10")),
        "{r:?}"
    );
    assert_eq!(tag(&c.recv_app().unwrap(), 35), Some("5"));

    // Admin messages: refused from a trading session, applied from the admin's.
    a.send("U1", &[(8100, "MARK"), (55, "BTC-PERP"), (8101, "60100.0")]);
    let r = a.recv_app().unwrap();
    assert_eq!((tag(&r, 35), tag(&r, 380)), (Some("j"), Some("3")), "{r:?}");
    let mut admin = RawFix::connect(gw.fix, "ADMIN");
    assert_eq!(tag(&admin.logon("admin-demo"), 35), Some("A"));
    admin.send("U1", &[(8100, "MARK"), (55, "BTC-PERP"), (8101, "60100.0")]);
    let r = admin.recv_app().unwrap();
    assert_eq!(
        (tag(&r, 35), tag(&r, 8103)),
        (Some("U2"), Some("0")),
        "{r:?}"
    );
    admin.send("D", &new_order("77"));
    let r = admin.recv_app().unwrap();
    assert_eq!(
        (tag(&r, 35), tag(&r, 380)),
        (Some("j"), Some("3")),
        "the admin cannot trade: {r:?}"
    );

    // ALICE still trades.
    a.send("D", &new_order("9"));
    let er = a.recv_app().unwrap();
    assert_eq!(
        (tag(&er, 150), tag(&er, 11)),
        (Some("0"), Some("9")),
        "{er:?}"
    );
    let (ok, _) = gw.stop();
    assert!(ok);
}

#[test]
fn wrong_passwords_are_refused_then_delayed_then_locked_out() {
    let dir = temp_dir("fix-lockout");
    let gw = Gateway::start(&config(&dir, "never", 0));
    for _ in 0..3 {
        let mut x = RawFix::connect(gw.fix, "ALICE");
        let r = x.logon("wrong");
        assert_eq!(
            (tag(&r, 35), tag(&r, 58)),
            (Some("5"), Some("invalid credentials"))
        );
    }
    // The fourth try from this address is held for the configured delay (1 s).
    let start = std::time::Instant::now();
    let mut x = RawFix::connect(gw.fix, "ALICE");
    let r = x.logon("wrong");
    assert_eq!(tag(&r, 58), Some("invalid credentials"));
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    for _ in 0..6 {
        let mut x = RawFix::connect(gw.fix, "ALICE");
        let _ = x.logon("wrong");
    }
    // Past ten failures the address is refused without a check, even with the right password.
    let mut x = RawFix::connect(gw.fix, "ALICE");
    let r = x.logon("alice-demo");
    assert_eq!(
        tag(&r, 58),
        Some("too many failed logons from this address"),
        "{r:?}"
    );
    let m = gw.metrics();
    assert!(m.contains("cascade_logon_lockouts_total 1"), "{m}");
    let (ok, _) = gw.stop();
    assert!(ok);
}
