#!/usr/bin/env python3
"""Cut a level-N LOBSTER pair down to fewer levels, as LOBSTER would have written it:
a message is kept if it is type 5, 6 or 7, or if it changes the truncated book.

usage: lobster_cut.py <message.csv> <orderbook.csv> <levels> <out_dir>
Writes <out_dir>/cut_message_<levels>.csv and cut_orderbook_<levels>.csv.
Used for the level-1/2/3 robustness figures in docs/LOBSTER.md."""
import os
import sys

msg_path, book_path, levels, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.makedirs(out, exist_ok=True)
with open(msg_path) as fm, open(book_path) as fb, \
        open(f"{out}/cut_message_{levels}.csv", "w") as om, \
        open(f"{out}/cut_orderbook_{levels}.csv", "w") as ob:
    prev = None
    for m, r in zip(fm, fb):
        row = ",".join(r.strip().split(",")[: 4 * levels])
        if m.split(",")[1] in ("5", "6", "7") or row != prev:
            om.write(m if m.endswith("\n") else m + "\n")
            ob.write(row + "\n")
            prev = row
