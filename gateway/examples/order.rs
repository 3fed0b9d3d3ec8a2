//! Logs on to a running gateway over the binary protocol as ALICE, buys 0.010 BTC-PERP
//! at 59000.0 (good till cancelled), prints the execution report, and cancels it.
//!
//! ```sh
//! cargo run --release -p cascade-gateway                       # terminal 1
//! cargo run --release -p cascade-gateway --example order        # terminal 2
//! ```

use std::time::Duration;

use cascade_gateway::binary::client::Client;
use cascade_gateway::binary::{ClientMsg, ServerMsg};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9877".into())
        .parse()?;
    let mut c = Client::connect(addr, "ALICE", "alice-demo", 0)?;
    let cl = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    // BTC-PERP is market 0; prices have 1 decimal (59000.0 = 590000), quantities 3 (0.010 = 10 lots).
    c.send(&ClientMsg::NewOrder {
        cl_ord_id: cl,
        market: 0,
        side: 1,
        ord_type: 2,
        tif: 1,
        flags: 0,
        stp: 1,
        price: 590_000,
        stop_px: 0,
        qty: 10,
    })?;
    println!("{:?}", c.recv(Duration::from_secs(5))?);
    c.send(&ClientMsg::Cancel {
        cl_ord_id: cl + 1,
        orig_cl_ord_id: cl,
    })?;
    while let Some(m) = c.recv(Duration::from_secs(2))? {
        println!("{m:?}");
        if matches!(m, ServerMsg::Exec(e) if e.exec_type == b'4') {
            break;
        }
    }
    c.send(&ClientMsg::Logout)?;
    Ok(())
}
