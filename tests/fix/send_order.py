#!/usr/bin/env python3
"""Log on to a running cascade-gateway over FIX 4.4 as ALICE, send one limit order,
print every message the gateway sends back for a few seconds, and log out.

Standard library only (no QuickFIX needed):

    python3 tests/fix/send_order.py [HOST:PORT] [SIDE] [QTY] [PRICE]

Defaults: 127.0.0.1:9876, buy (1), 0.010 BTC-PERP at 59000.0.
"""

import datetime
import socket
import sys
import time

SOH = "\x01"


def fix_message(fields):
    """Frame body fields (list of (tag, value)) with BodyLength and CheckSum."""
    body = "".join(f"{t}={v}{SOH}" for t, v in fields)
    head = f"8=FIX.4.4{SOH}9={len(body)}{SOH}"
    total = sum((head + body).encode()) % 256
    return (head + body + f"10={total:03d}{SOH}").encode()


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9876"
    side = sys.argv[2] if len(sys.argv) > 2 else "1"
    qty = sys.argv[3] if len(sys.argv) > 3 else "0.010"
    price = sys.argv[4] if len(sys.argv) > 4 else "59000.0"
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    seq = 1

    def send(msg_type, body):
        nonlocal seq
        header = [(35, msg_type), (49, "ALICE"), (56, "CASCADE"), (34, seq), (52, now())]
        s.sendall(fix_message(header + body))
        seq += 1

    # ResetSeqNumFlag: this throwaway client keeps no sequence numbers of its own.
    send("A", [(98, 0), (108, 30), (141, "Y"), (553, "ALICE"), (554, "alice-demo")])
    send("D", [(11, int(time.time() * 1000)), (55, "BTC-PERP"), (54, side), (38, qty),
               (40, 2), (44, price), (59, 1), (60, now())])
    deadline = time.time() + 3
    buf = b""
    s.settimeout(0.5)
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        while b"\x0110=" in buf:
            end = buf.index(b"\x0110=") + 8
            print(buf[:end].decode().replace(SOH, "|"))
            buf = buf[end:]
    send("5", [])
    s.close()


if __name__ == "__main__":
    main()
