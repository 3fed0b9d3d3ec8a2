//! The text form of command logs (`cascade_gateway::text_log`): every command over the
//! full range of every field reads back to itself, and so does a whole log; bad lines
//! are errors naming the line and the column, never panics.

use cascade_core::{Command, Rate};
use cascade_gateway::text_log::{parse_line, parse_log, rate_text, write_line, TextError, HEADER};
use cascade_tests::arb::command;
use proptest::prelude::*;

fn line(c: &Command) -> String {
    let mut s = String::new();
    write_line(c, &mut s);
    s
}

fn err(text: &str) -> TextError {
    parse_line(text, 7).expect_err(text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4_000)
    ))]

    #[test]
    fn every_command_reads_back_to_itself(c in command()) {
        let text = line(&c);
        prop_assert!(text.ends_with('\n') && !text[..text.len() - 1].contains('\n'));
        prop_assert_eq!(parse_line(text.trim_end(), 1), Ok(c));
    }

    #[test]
    fn a_whole_log_reads_back(cs in proptest::collection::vec(command(), 0..20)) {
        let mut text = format!("{HEADER}\n# engine: max_orders=8\n\n");
        for c in &cs {
            write_line(c, &mut text);
        }
        let (back, engine) = parse_log(&text).unwrap();
        prop_assert_eq!(back, cs);
        prop_assert_eq!(engine.as_deref(), Some("max_orders=8"));
    }

    #[test]
    fn rates_print_as_decimals_that_read_back_exactly(bits in any::<i64>(), small in -(1i64 << 33)..(1i64 << 33)) {
        for r in [Rate::from_bits(bits), Rate::from_bits(small)] {
            prop_assert_eq!(rate_text(r).parse::<Rate>(), Ok(r));
        }
    }

    #[test]
    fn damaged_lines_are_errors_not_panics(c in command(), at in any::<usize>(), b in any::<u8>()) {
        let text = line(&c);
        let mut bytes = text.trim_end().as_bytes().to_vec();
        let i = at % bytes.len();
        bytes[i] = b;
        if let Ok(s) = std::str::from_utf8(&bytes) {
            if let Ok(back) = parse_line(s, 1) {
                // Whatever reads is a command that writes back to the same fields.
                prop_assert_eq!(parse_line(line(&back).trim_end(), 1), Ok(back));
            }
        }
        let cut = &text[..at % text.len()];
        let _ = parse_line(cut, 1);
    }
}

/// Rates that `Rate`'s own `Display` does not round-trip (it prints 0x1999_9999, the
/// engine's `bps(1000)`, as `0.1`, which reads back as 0x1999_999a) are written exactly.
#[test]
fn rates_from_basis_points_survive_the_text() {
    for bp in [1, 5, 10, 100, 1_000, 2_500, 5_000, -1, -10_000] {
        let r = cascade_core::risk::bps(bp);
        assert_eq!(
            rate_text(r).parse::<Rate>(),
            Ok(r),
            "{bp} bps: {}",
            rate_text(r)
        );
    }
    assert_eq!(
        rate_text(Rate::from_bits(0x1999_9999)),
        "0.09999999986030161380767822265625"
    );
    assert_eq!(rate_text(Rate::from_num(-3)), "-3");
    assert_eq!(
        rate_text(Rate::from_bits(-1)),
        "-0.00000000023283064365386962890625"
    );
}

#[test]
fn errors_name_the_line_and_column() {
    let e = err("1,2,deposit,account=3,amount=x");
    assert_eq!((e.line, e.column), (7, 5));
    assert!(e.message.contains("amount"), "{e}");
    let e = err("1,2,deposit,account=3");
    assert_eq!(e.column, 0);
    assert!(e.message.contains("missing field `amount`"), "{e}");
    let e = err("1,2,depost,account=3,amount=1");
    assert_eq!(e.column, 3);
    let e = err("1,2,deposit,account=3,amount=1,colour=red");
    assert_eq!(e.column, 6);
    assert!(e.message.contains("unexpected field `colour`"), "{e}");
    let e = err("1,2,deposit,account=3,account=4,amount=1");
    assert_eq!(e.column, 5);
    let e = err("x,2,deposit,account=3,amount=1");
    assert_eq!(e.column, 1);
    let e = err("1,2,new_order,account=1,market=0,client_id=1,side=up,type=limit,price=5,qty=1,stp=cancel_resting,reduce_only=false");
    assert_eq!(e.column, 7);
    assert!(e.message.contains("buy, sell"), "{e}");
    assert_eq!(
        e.to_string(),
        "line 7, column 7: `side`: `up` is not one of buy, sell"
    );
    let e = parse_log("seq,ts\n").unwrap_err();
    assert_eq!((e.line, e.column), (1, 0));
    let e = parse_log(&format!("{HEADER}\n1,1,open_account,account=1\n2,1,oops\n")).unwrap_err();
    assert_eq!((e.line, e.column), (3, 3));
}

/// The format, pinned: a new limit order and a funding payment as a person writes them.
#[test]
fn a_log_reads_as_documented() {
    let text = format!(
        "{HEADER}\n1,10,new_order,account=7,market=1,client_id=9,side=sell,type=ioc,price=150,qty=2,stp=decrement_both,reduce_only=true\n2,11,funding_rate,market=1,rate=0.0001\n3,12,mass_cancel,account=7\n"
    );
    let (cs, engine) = parse_log(&text).unwrap();
    assert_eq!(engine, None);
    let mut again = format!("{HEADER}\n");
    for c in &cs {
        write_line(c, &mut again);
    }
    // A person's 0.0001 reads as the nearest I32F32 value, which is written exactly.
    assert_eq!(
        again,
        text.replace("rate=0.0001", "rate=0.00010000006295740604400634765625")
    );
    assert_eq!(parse_log(&again).unwrap().0, cs);
}
