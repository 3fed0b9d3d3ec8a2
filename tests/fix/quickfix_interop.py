#!/usr/bin/env python3
"""QuickFIX/Python interoperability test for the cascade-gateway FIX 4.4 endpoint.

The gateway under test is started (and, for the restart check, restarted) by the
caller; this script only connects to it as two FIX initiator sessions,
ALICE->CASCADE and BOB->CASCADE, through QuickFIX's SocketInitiator with the
stock FIX44.xml data dictionary, and checks the gateway's FIX conventions.

    python tests/fix/quickfix_interop.py --host 127.0.0.1 --port PORT --store DIR \
        [--phase all|before-restart|after-restart]

Phases:
  before-restart  every scenario except the reconnect, ending with a logout.
                  Wipes DIR/store and DIR/log first (a fresh FIX session pair).
  after-restart   run after the caller restarted the gateway: logs on again with
                  the QuickFIX file store left by before-restart (sequence numbers
                  continue, no ResetSeqNumFlag), places and cancels an order, logs out.
  all             the same as before-restart (no restart is possible here).

Output: one line `ok <scenario>` per passed scenario, `FAIL: <scenario>: <why>`
for a failed one, and finally `N passed, M failed` alone on a line. Exit status 0
when everything passed, 1 otherwise (2 for bad usage). The first failure ends the
run unless --keep-going is given. QuickFIX's own logs (every message in and out,
session events) are under DIR/log.

FIX44.xml is taken from $FIX44_XML if set, otherwise from the quickfix wheel
(installed as <prefix>/share/quickfix/FIX44.xml).
"""

import argparse
import datetime
import glob
import os
import shutil
import site
import sys
import sysconfig
import threading
import time
import traceback
from decimal import Decimal, InvalidOperation

try:  # imported lazily in spirit: --help must work without quickfix installed
    import quickfix as fix
except ImportError as _import_error:  # pragma: no cover - reported in main()
    fix = None
    QUICKFIX_IMPORT_ERROR = _import_error
else:
    QUICKFIX_IMPORT_ERROR = None

# ---------------------------------------------------------------------------
# The gateway's conventions (the contract under test)
# ---------------------------------------------------------------------------

SERVER_COMP_ID = "CASCADE"
BEGIN_STRING = "FIX.4.4"
# comp id -> (Username 553, Password 554, account number for tag 1)
USERS = {
    "ALICE": ("ALICE", "alice-demo", 1),
    "BOB": ("BOB", "bob-demo", 2),
}
# symbol -> (price decimals, qty decimals)
SYMBOLS = {"BTC-PERP": (1, 3), "ETH-PERP": (2, 2)}
BTC = "BTC-PERP"
UNKNOWN_SYMBOL = "DOGE-PERP"

BUY, SELL = "1", "2"
ADMIN_TYPES = {"0", "1", "2", "3", "4", "5", "A"}

# Custom tags.
TAG_STP = 8000

# Timeouts (seconds).
LOGON_TIMEOUT = 10.0
WAIT = 5.0  # default per-message wait
HEARTBEAT_WAIT = 6.0  # HeartBtInt=2; timers tick once a second on both sides
STOP_TIMEOUT = 15.0
DEFAULT_OVERALL_TIMEOUT = 120.0

HEARTBEAT_INTERVAL = 2


class ScenarioFailure(Exception):
    """A scenario's expectation was not met; the message is the `<why>`."""


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def utc_timestamp():
    """FIX UTCTimestamp with milliseconds."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%d-%H:%M:%S.") + "%03d" % (now.microsecond // 1000)


def utc_date():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")


def fmt_price(symbol, price):
    decimals = SYMBOLS.get(symbol, (2, 3))[0]
    return "%.*f" % (decimals, Decimal(str(price)))


def fmt_qty(symbol, qty):
    decimals = SYMBOLS.get(symbol, (2, 3))[1]
    return "%.*f" % (decimals, Decimal(str(qty)))


def to_decimal(value):
    if value is None:
        return None
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None


def one_line(text, limit=600):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_fix(raw):
    """Raw FIX string -> [(tag, value)] in wire order (repeating groups kept flat)."""
    pairs = []
    for part in raw.split("\x01"):
        if not part:
            continue
        tag, _, value = part.partition("=")
        try:
            pairs.append((int(tag), value))
        except ValueError:
            continue
    return pairs


class Msg:
    """An immutable, parsed copy of a message seen in a QuickFIX callback."""

    __slots__ = ("index", "direction", "comp_id", "raw", "pairs", "fields", "msgtype", "at")

    def __init__(self, index, direction, comp_id, raw):
        self.index = index
        self.direction = direction  # "in" (from the gateway) or "out" (to it)
        self.comp_id = comp_id  # our side: ALICE or BOB
        self.raw = raw
        self.pairs = parse_fix(raw)
        self.fields = {}
        for tag, value in self.pairs:
            self.fields.setdefault(tag, value)
        self.msgtype = self.fields.get(35, "")
        self.at = time.monotonic()

    def get(self, tag, default=None):
        return self.fields.get(tag, default)

    def all(self, tag):
        return [value for t, value in self.pairs if t == tag]

    def num(self, tag):
        return to_decimal(self.fields.get(tag))

    @property
    def is_admin(self):
        return self.msgtype in ADMIN_TYPES

    def summary(self):
        keys = (34, 43, 150, 39, 11, 41, 55, 38, 44, 14, 151, 31, 32, 103, 102, 380, 372, 371, 373, 58, 112, 7, 16, 36, 123)
        shown = " ".join("%d=%s" % (k, self.fields[k]) for k in keys if k in self.fields)
        return "35=%s %s" % (self.msgtype, shown)


def describe(m):
    """Human-readable reason for a reject-like message."""
    if m is None:
        return "nothing"
    if m.msgtype == "8":
        return "ExecutionReport 150=%s 39=%s 58=%r 103=%s" % (m.get(150), m.get(39), m.get(58, ""), m.get(103, "-"))
    if m.msgtype == "9":
        return "OrderCancelReject 434=%s 102=%s 58=%r" % (m.get(434), m.get(102, "-"), m.get(58, ""))
    if m.msgtype == "j":
        return "BusinessMessageReject 380=%s 372=%s 58=%r" % (m.get(380), m.get(372), m.get(58, ""))
    if m.msgtype == "3":
        return "session Reject 373=%s 371=%s 58=%r" % (m.get(373, "-"), m.get(371, "-"), m.get(58, ""))
    return m.summary()


# ---------------------------------------------------------------------------
# FIX44.xml and the QuickFIX settings
# ---------------------------------------------------------------------------


def find_fix44_xml():
    """Locate FIX44.xml: $FIX44_XML, else where the quickfix wheel installed it.

    The quickfix(-ssl) wheel ships the dictionaries as wheel *data* files, which
    pip installs to <scheme data dir>/share/quickfix/ (for a venv: <venv>/share/quickfix).
    """
    override = os.environ.get("FIX44_XML")
    if override:
        if os.path.isfile(override):
            return os.path.abspath(override)
        raise ScenarioFailure("FIX44_XML=%s is not a file" % override)

    candidates = []
    prefixes = [sysconfig.get_paths().get("data"), sys.prefix, sys.exec_prefix, sys.base_prefix]
    try:
        prefixes.append(site.getuserbase())
    except Exception:  # pragma: no cover
        pass
    for prefix in prefixes:
        if prefix:
            candidates.append(os.path.join(prefix, "share", "quickfix", "FIX44.xml"))
    if fix is not None:
        # Walk up from the module: .../lib/python3.X/site-packages/quickfix.py -> <prefix>
        directory = os.path.dirname(os.path.abspath(fix.__file__))
        for _ in range(5):
            candidates.append(os.path.join(directory, "share", "quickfix", "FIX44.xml"))
            candidates.append(os.path.join(directory, "quickfix", "FIX44.xml"))
            candidates.append(os.path.join(directory, "FIX44.xml"))
            directory = os.path.dirname(directory)
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    # Last resort: a shallow glob over site-packages.
    roots = []
    try:
        roots.extend(site.getsitepackages())
    except Exception:  # pragma: no cover
        pass
    for root in roots:
        for pattern in ("FIX44.xml", "*/FIX44.xml", "*/*/FIX44.xml", "*/*/*/*/FIX44.xml"):
            hits = sorted(glob.glob(os.path.join(root, pattern)))
            if hits:
                return os.path.abspath(hits[0])
    raise ScenarioFailure(
        "FIX44.xml not found (looked in %s); set FIX44_XML" % ", ".join(sorted(set(os.path.dirname(c) for c in candidates[:4])))
    )


def settings_text(host, port, store_dir, log_dir, dictionary):
    return "\n".join(
        [
            "[DEFAULT]",
            "ConnectionType=initiator",
            "BeginString=" + BEGIN_STRING,
            "TargetCompID=" + SERVER_COMP_ID,
            "SocketConnectHost=%s" % host,
            "SocketConnectPort=%d" % port,
            "HeartBtInt=%d" % HEARTBEAT_INTERVAL,
            "ReconnectInterval=1",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=Y",
            "DataDictionary=" + dictionary,
            "ValidateUserDefinedFields=N",
            "ValidateFieldsOutOfOrder=N",
            "AllowUnknownMsgFields=Y",
            "FileStorePath=" + store_dir,
            "FileLogPath=" + log_dir,
            "PersistMessages=Y",
            "ResetOnLogon=N",
            "ResetOnLogout=N",
            "ResetOnDisconnect=N",
            "LogonTimeout=5",
            "LogoutTimeout=3",
            "CheckLatency=Y",
            "MaxLatency=120",
            "",
            "[SESSION]",
            "SenderCompID=ALICE",
            "",
            "[SESSION]",
            "SenderCompID=BOB",
            "",
        ]
    )


# ---------------------------------------------------------------------------
# QuickFIX application: records everything, adds the logon credentials
# ---------------------------------------------------------------------------

_ApplicationBase = fix.Application if fix is not None else object


class RecordingApplication(_ApplicationBase):
    """Forwards every callback to the Harness. Never lets a Python exception escape
    into QuickFIX."""

    def __init__(self, harness):
        super().__init__()
        self.harness = harness

    def onCreate(self, session_id):
        self.harness.on_create(session_id)

    def onLogon(self, session_id):
        self.harness.on_logon(session_id, True)

    def onLogout(self, session_id):
        self.harness.on_logon(session_id, False)

    def toAdmin(self, message, session_id):
        try:
            comp_id = session_id.getSenderCompID().getValue()
            header = message.getHeader()
            if header.isSetField(35) and header.getField(35) == "A":
                username, password, _ = USERS[comp_id]
                message.setField(fix.StringField(553, username))
                message.setField(fix.StringField(554, password))
            self.harness.record("out", comp_id, message)
        except Exception:  # pragma: no cover - must not propagate into C++
            self.harness.internal_error(traceback.format_exc())

    def fromAdmin(self, message, session_id):
        self._incoming(message, session_id)

    def toApp(self, message, session_id):
        # Note: raising fix.DoNotSend here (to gap-fill instead of replaying old
        # orders on a gateway ResendRequest) aborts the process with this wheel
        # (the C++ exception escapes the SWIG director), so resends go out as
        # QuickFIX makes them: PossDupFlag 43=Y with OrigSendingTime 122.
        self._record_out(message, session_id)

    def fromApp(self, message, session_id):
        self._incoming(message, session_id)

    def _record_out(self, message, session_id):
        try:
            self.harness.record("out", session_id.getSenderCompID().getValue(), message)
        except Exception:  # pragma: no cover
            self.harness.internal_error(traceback.format_exc())

    def _incoming(self, message, session_id):
        try:
            self.harness.record("in", session_id.getSenderCompID().getValue(), message)
        except Exception:  # pragma: no cover
            self.harness.internal_error(traceback.format_exc())


# ---------------------------------------------------------------------------
# The harness: the initiator, recorded traffic, waiting, sending
# ---------------------------------------------------------------------------


class Harness:
    def __init__(self, args, dictionary):
        self.args = args
        self.dictionary = dictionary
        self.store_dir = os.path.join(args.store, "store")
        self.log_dir = os.path.join(args.store, "log")
        self.cond = threading.Condition()
        self.messages = {comp_id: [] for comp_id in USERS}  # every message, both directions
        self.logged_on = {comp_id: False for comp_id in USERS}
        self.logon_marks = {comp_id: 0 for comp_id in USERS}
        self.session_ids = {}
        self.internal_errors = []
        self.initiator = None
        self.stopped = False
        self.state = {}  # values handed from one scenario to the next
        base = int(time.time() * 1000) * 1000
        self._next_id = base
        self._id_lock = threading.Lock()
        self.verbose = args.verbose

    # -- ids -------------------------------------------------------------

    def new_id(self):
        """A fresh decimal ClOrdID (u64), unique across runs and phases."""
        with self._id_lock:
            self._next_id += 1
            return str(self._next_id)

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        os.makedirs(self.store_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        cfg_path = os.path.join(self.args.store, "quickfix-%s.cfg" % self.args.phase)
        with open(cfg_path, "w") as cfg:
            cfg.write(settings_text(self.args.host, self.args.port, self.store_dir, self.log_dir, self.dictionary))
        settings = fix.SessionSettings(cfg_path)
        self.application = RecordingApplication(self)
        self.store_factory = fix.FileStoreFactory(settings)
        self.log_factory = fix.FileLogFactory(settings)
        self.settings = settings
        self.initiator = fix.SocketInitiator(self.application, self.store_factory, settings, self.log_factory)
        self.initiator.start()
        for comp_id in USERS:
            self.session_ids.setdefault(comp_id, fix.SessionID(BEGIN_STRING, comp_id, SERVER_COMP_ID))

    def stop(self, timeout=STOP_TIMEOUT, force=False):
        """initiator.stop() in a helper thread so that a hang cannot block us."""
        if self.initiator is None or self.stopped:
            return True
        done = threading.Event()

        def run():
            try:
                if force:
                    self.initiator.stop(True)
                else:
                    self.initiator.stop()
            except Exception:
                self.internal_error(traceback.format_exc())
            finally:
                done.set()

        threading.Thread(target=run, name="qf-stop", daemon=True).start()
        ok = done.wait(timeout)
        self.stopped = ok
        return ok

    # -- callbacks (QuickFIX threads) ------------------------------------------

    def on_create(self, session_id):
        self.session_ids[session_id.getSenderCompID().getValue()] = session_id

    def on_logon(self, session_id, logged_on):
        comp_id = session_id.getSenderCompID().getValue()
        with self.cond:
            self.logged_on[comp_id] = logged_on
            if logged_on:
                self.logon_marks[comp_id] = len(self.messages[comp_id])
            self.cond.notify_all()
        if self.verbose:
            print("[%s] %s" % (comp_id, "logon" if logged_on else "logout"), file=sys.stderr, flush=True)

    def record(self, direction, comp_id, message):
        raw = message.toString()
        with self.cond:
            log = self.messages.setdefault(comp_id, [])
            msg = Msg(len(log), direction, comp_id, raw)
            log.append(msg)
            self.cond.notify_all()
        if self.verbose:
            arrow = "<-" if direction == "in" else "->"
            print("[%s] %s %s" % (comp_id, arrow, msg.summary()), file=sys.stderr, flush=True)

    def internal_error(self, text):
        with self.cond:
            self.internal_errors.append(text)
        print("internal error in QuickFIX callback:\n" + text, file=sys.stderr, flush=True)

    # -- session access ------------------------------------------------------

    def session(self, comp_id):
        session_id = self.session_ids.get(comp_id)
        session = fix.Session.lookupSession(session_id) if session_id is not None else None
        if session is None:
            raise ScenarioFailure("no QuickFIX session %s->%s" % (comp_id, SERVER_COMP_ID))
        return session

    def is_logged_on(self, comp_id):
        with self.cond:
            flag = self.logged_on.get(comp_id, False)
        try:
            return flag and self.session(comp_id).isLoggedOn()
        except ScenarioFailure:
            return False

    def require_logged_on(self, *comp_ids):
        for comp_id in comp_ids or tuple(USERS):
            if not self.is_logged_on(comp_id):
                raise ScenarioFailure("session %s is not logged on%s" % (comp_id, self.session_trouble(comp_id)))

    def wait_logged_on(self, comp_ids, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                missing = [c for c in comp_ids if not self.logged_on.get(c)]
                if not missing:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(min(remaining, 0.25))
        details = "; ".join("%s%s" % (c, self.session_trouble(c)) for c in missing)
        raise ScenarioFailure("not logged on within %.0fs: %s" % (timeout, details))

    def session_trouble(self, comp_id):
        """Why a session is down, as far as we can tell: the gateway's Logout text,
        a session-level Reject, or the last line of QuickFIX's event log."""
        parts = []
        with self.cond:
            log = list(self.messages.get(comp_id, []))
        for m in reversed(log):
            if m.direction == "in" and m.msgtype in ("5", "3"):
                parts.append("gateway sent %s 58=%r" % ("Logout" if m.msgtype == "5" else "Reject", m.get(58, "")))
                break
        if not any(m.direction == "in" for m in log):
            parts.append("no message from %s:%d got past QuickFIX" % (self.args.host, self.args.port))
        event = self.last_event_line(comp_id)
        if event:
            parts.append("QuickFIX event log: %s" % event)
        return (" (" + "; ".join(parts) + ")") if parts else ""

    def last_event_line(self, comp_id):
        """The most telling recent line of QuickFIX's event log for the session
        (errors and protocol complaints rather than the routine connect/disconnect)."""
        path = os.path.join(self.log_dir, "%s-%s-%s.event.current.log" % (BEGIN_STRING, comp_id, SERVER_COMP_ID))
        try:
            with open(path, "r", errors="replace") as handle:
                lines = [line.strip().split(" : ", 1)[-1] for line in handle if line.strip()]
        except OSError:
            return ""
        recent = lines[-60:]
        telling = ("MsgSeqNum too", "Error", "error", "Reject", "reject", "Invalid", "Timed out", "refused", "reset", "Logout reason")
        for line in reversed(recent):
            if any(word in line for word in telling):
                return one_line(line, 200)
        routine = ("Connecting to", "Disconnecting", "Initiated logon request", "Created session", "Received logon response")
        for line in reversed(recent):
            if not line.startswith(routine):
                return one_line(line, 200)
        return one_line(lines[-1], 200) if lines else ""

    # -- recorded traffic ----------------------------------------------------

    def mark(self):
        """Current position in every session's message log."""
        with self.cond:
            return {comp_id: len(log) for comp_id, log in self.messages.items()}

    def since(self, comp_id, mark, direction=None):
        start = mark.get(comp_id, 0) if isinstance(mark, dict) else mark
        with self.cond:
            log = list(self.messages.get(comp_id, [])[start:])
        return [m for m in log if direction is None or m.direction == direction]

    def wait_for(self, comp_id, predicate, what, since, timeout=WAIT, direction="in"):
        """First message (of `direction`) after `since` satisfying `predicate`,
        waiting up to `timeout` seconds; ScenarioFailure with diagnostics otherwise."""
        start = since.get(comp_id, 0) if isinstance(since, dict) else since
        deadline = time.monotonic() + timeout
        cursor = start
        with self.cond:
            while True:
                log = self.messages.get(comp_id, [])
                while cursor < len(log):
                    m = log[cursor]
                    cursor += 1
                    if m.direction == direction and predicate(m):
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.cond.wait(min(remaining, 0.25))
        raise ScenarioFailure(
            "%s: no %s within %.0fs%s" % (comp_id, what, timeout, self.diagnose(comp_id, start))
        )

    def diagnose(self, comp_id, start):
        notes = []
        if not self.is_logged_on(comp_id):
            notes.append("session DOWN%s" % self.session_trouble(comp_id))
        msgs = self.since(comp_id, start)
        rejects_out = [m for m in msgs if m.direction == "out" and m.msgtype == "3"]
        if rejects_out:
            notes.append(
                "QuickFIX rejected gateway message(s) against FIX44.xml: "
                + " | ".join(describe(m) for m in rejects_out[:3])
            )
        seen = [m for m in msgs if m.direction == "in" and m.msgtype not in ("0",)]
        if seen:
            notes.append("received since: " + " | ".join(m.summary() for m in seen[-4:]))
        else:
            notes.append("nothing but heartbeats received since the request")
        return "; " + "; ".join(notes)

    def check_no_session_rejects(self, mark):
        """Session-level rejects in either direction mean a message was dropped."""
        for comp_id in USERS:
            for m in self.since(comp_id, mark):
                if m.msgtype != "3":
                    continue
                if m.direction == "out":
                    raise ScenarioFailure(
                        "%s: QuickFIX rejected a gateway message (not valid against FIX44.xml): %s"
                        % (comp_id, describe(m))
                    )
                raise ScenarioFailure("%s: gateway sent a session-level %s" % (comp_id, describe(m)))

    # -- sending -------------------------------------------------------------

    def send(self, comp_id, msgtype, fields):
        """Send a message built from [(tag, value)]; header fields are QuickFIX's."""
        self.require_logged_on(comp_id)
        message = fix.Message()
        message.getHeader().setField(fix.BeginString(BEGIN_STRING))
        message.getHeader().setField(fix.MsgType(msgtype))
        for tag, value in fields:
            if value is not None:
                message.setField(fix.StringField(int(tag), str(value)))
        try:
            sent = fix.Session.sendToTarget(message, self.session_ids[comp_id])
        except Exception as error:  # SessionNotFound and friends
            raise ScenarioFailure("%s: sendToTarget(35=%s) failed: %s" % (comp_id, msgtype, error))
        if not sent:
            raise ScenarioFailure("%s: QuickFIX did not send 35=%s (session not logged on?)" % (comp_id, msgtype))

    def sent_seq(self, comp_id, msgtype, tag, value):
        """MsgSeqNum (34) of our latest outgoing message of a type with tag=value."""
        with self.cond:
            log = list(self.messages.get(comp_id, []))
        for m in reversed(log):
            if m.direction == "out" and m.msgtype == msgtype and m.get(tag) == value:
                return m.get(34)
        return None

    # -- order helpers ---------------------------------------------------------

    def new_order(self, comp_id, side, qty, price=None, symbol=BTC, ord_type="2", tif=None,
                  exec_inst=None, stop_px=None, stp=None, with_account=False):
        cid = self.new_id()
        fields = [
            (11, cid),
            (1, USERS[comp_id][2] if with_account else None),
            (55, symbol),
            (54, side),
            (38, fmt_qty(symbol, qty)),
            (40, ord_type),
            (44, fmt_price(symbol, price) if price is not None else None),
            (99, fmt_price(symbol, stop_px) if stop_px is not None else None),
            (59, tif),
            (18, exec_inst),
            (60, utc_timestamp()),
            (TAG_STP, stp),
        ]
        self.send(comp_id, "D", fields)
        return cid

    def cancel(self, comp_id, orig_cid, side, symbol=BTC):
        cid = self.new_id()
        self.send(comp_id, "F", [(41, orig_cid), (11, cid), (55, symbol), (54, side), (60, utc_timestamp())])
        return cid

    def replace(self, comp_id, orig_cid, side, qty, price, symbol=BTC):
        cid = self.new_id()
        self.send(
            comp_id,
            "G",
            [
                (41, orig_cid),
                (11, cid),
                (55, symbol),
                (54, side),
                (38, fmt_qty(symbol, qty)),
                (40, "2"),
                (44, fmt_price(symbol, price)),
                (60, utc_timestamp()),
            ],
        )
        return cid

    def order_outcome(self, comp_id, cid, want, what, since, timeout=WAIT, orig=None, msgtype="D"):
        """Wait for the ExecutionReport of order `cid` with ExecType in `want`.

        Stops early, with the reason, on anything that answers `cid` negatively:
        an ExecutionReport 150=8 (unless wanted), an OrderCancelReject or a
        BusinessMessageReject naming it.
        """
        want = set(want)
        # toApp records the request synchronously inside sendToTarget, so its
        # MsgSeqNum is known here (a BusinessMessageReject names it in 45).
        our_seq = self.sent_seq(comp_id, msgtype, 11, cid)

        def predicate(m):
            if m.msgtype == "8":
                if m.get(11) == cid or (orig is not None and m.get(41) == orig and m.get(11) in (None, cid)):
                    return m.get(150) in want or m.get(150) == "8"
                return False
            if m.msgtype == "9":
                return m.get(11) == cid
            if m.msgtype == "j":
                return m.get(379) == cid or (our_seq is not None and m.get(45) == our_seq)
            return False

        m = self.wait_for(comp_id, predicate, what, since, timeout)
        if m.msgtype == "8" and m.get(150) in want:
            return m
        raise ScenarioFailure("%s: %s: got %s" % (comp_id, what, describe(m)))

    def fills(self, comp_id, cid, since):
        return [m for m in self.since(comp_id, since, "in") if m.msgtype == "8" and m.get(11) == cid and m.get(150) == "F"]

    def mass_cancel_quietly(self, comp_id):
        """Best-effort cleanup after a failed scenario (only with --keep-going)."""
        try:
            if not self.is_logged_on(comp_id):
                return
            mark = self.mark()
            cid = self.new_id()
            self.send(comp_id, "q", [(11, cid), (530, "7"), (60, utc_timestamp())])
            self.wait_for(comp_id, lambda m: m.msgtype == "r" and m.get(11) == cid, "cleanup 35=r", mark, 3.0)
        except Exception:
            pass


def expect_eq(m, tag, expected, name):
    actual = m.get(tag)
    if actual != expected:
        raise ScenarioFailure("%s (%d) = %r, expected %r in %s" % (name, tag, actual, expected, m.summary()))


def expect_num(m, tag, expected, name):
    actual = m.num(tag)
    if actual is None or actual != Decimal(str(expected)):
        raise ScenarioFailure("%s (%d) = %r, expected %s in %s" % (name, tag, m.get(tag), expected, m.summary()))


# ---------------------------------------------------------------------------
# Scenarios: before restart
# ---------------------------------------------------------------------------


def sc_logon(h):
    h.wait_logged_on(list(USERS), LOGON_TIMEOUT)
    for comp_id in USERS:
        logon = h.wait_for(comp_id, lambda m: m.msgtype == "A", "Logon reply", 0, 1.0)
        if logon.get(141) == "Y":
            raise ScenarioFailure("%s: gateway's Logon carries ResetSeqNumFlag 141=Y" % comp_id)


def sc_heartbeat(h):
    for comp_id in USERS:
        h.require_logged_on(comp_id)
        # An unsolicited Heartbeat (no TestReqID): the gateway's own HeartBtInt timer.
        h.wait_for(
            comp_id,
            lambda m: m.msgtype == "0" and m.get(112) is None,
            "unsolicited Heartbeat (35=0 without 112) with HeartBtInt=%d" % HEARTBEAT_INTERVAL,
            h.logon_marks[comp_id],
            HEARTBEAT_WAIT,
        )


def test_request_roundtrip(h, comp_id, timeout=WAIT):
    mark = h.mark()
    req_id = "TR-%s-%s" % (comp_id, h.new_id())
    h.send(comp_id, "1", [(112, req_id)])
    h.wait_for(comp_id, lambda m: m.msgtype == "0" and m.get(112) == req_id, "Heartbeat with 112=%s" % req_id, mark, timeout)


def sc_test_request(h):
    for comp_id in USERS:
        test_request_roundtrip(h, comp_id)


def sc_limit_new(h):
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "0.010", "59000.0", tif="1", with_account=True)
    er = h.order_outcome("ALICE", cid, {"0"}, "ExecutionReport 150=0 for GTC limit buy 0.010 @ 59000.0", mark)
    expect_eq(er, 39, "0", "OrdStatus")
    expect_num(er, 151, "0.010", "LeavesQty")
    expect_num(er, 14, "0", "CumQty")
    expect_eq(er, 55, BTC, "Symbol")
    expect_eq(er, 54, BUY, "Side")
    if not er.get(37):
        raise ScenarioFailure("ExecutionReport without OrderID (37)")
    h.state["alice_cid"] = cid


def sc_fill(h):
    alice_cid = h.state.get("alice_cid")
    if not alice_cid:
        raise ScenarioFailure("precondition: no resting ALICE order from limit_new")
    mark = h.mark()
    bob_cid = h.new_order("BOB", SELL, "0.004", "59000.0", tif="1")
    bob = h.order_outcome("BOB", bob_cid, {"F"}, "fill (150=F) for sell 0.004 @ 59000.0", mark)
    expect_eq(bob, 39, "2", "OrdStatus")
    expect_num(bob, 31, "59000", "LastPx")
    expect_num(bob, 32, "0.004", "LastQty")
    alice = h.order_outcome("ALICE", alice_cid, {"F"}, "maker fill (150=F) on the resting buy", mark)
    expect_eq(alice, 39, "1", "OrdStatus")
    expect_num(alice, 14, "0.004", "CumQty")
    expect_num(alice, 151, "0.006", "LeavesQty")
    expect_num(alice, 31, "59000", "LastPx")
    expect_num(alice, 32, "0.004", "LastQty")
    h.state["alice_working"] = alice_cid


def sc_replace(h):
    orig = h.state.get("alice_working")
    if not orig:
        raise ScenarioFailure("precondition: no partially filled ALICE order from fill")
    mark = h.mark()
    cid = h.replace("ALICE", orig, BUY, "0.005", "58950.0")
    er = h.order_outcome("ALICE", cid, {"5"}, "ExecutionReport 150=5 for replace to 0.005 @ 58950.0", mark, msgtype="G")
    if er.get(41) not in (None, orig):
        raise ScenarioFailure("OrigClOrdID (41) = %r, expected %s" % (er.get(41), orig))
    if er.get(44) is not None:
        expect_num(er, 44, "58950.0", "Price")
    if er.get(39) not in ("0", "1", "5"):
        raise ScenarioFailure("OrdStatus (39) = %r after replace, expected 0, 1 or 5" % er.get(39))
    h.state["alice_working"] = cid


def sc_cancel(h):
    orig = h.state.get("alice_working")
    if not orig:
        raise ScenarioFailure("precondition: no working ALICE order from replace")
    mark = h.mark()
    cid = h.cancel("ALICE", orig, BUY)
    er = h.order_outcome("ALICE", cid, {"4"}, "ExecutionReport 150=4 for the cancel", mark, orig=orig, msgtype="F")
    expect_eq(er, 39, "4", "OrdStatus")
    expect_num(er, 151, "0", "LeavesQty")
    h.state.pop("alice_working", None)


def sc_cancel_unknown(h):
    mark = h.mark()
    never_used = h.new_id()
    cid = h.cancel("ALICE", never_used, BUY)
    rej = h.wait_for(
        "ALICE",
        lambda m: (m.msgtype == "9" and (m.get(11) == cid or m.get(41) == never_used))
        or (m.msgtype == "8" and m.get(11) == cid),
        "OrderCancelReject (35=9) for unknown OrigClOrdID %s" % never_used,
        mark,
    )
    if rej.msgtype != "9":
        raise ScenarioFailure("expected OrderCancelReject, got %s" % describe(rej))
    expect_eq(rej, 434, "1", "CxlRejResponseTo")
    expect_eq(rej, 102, "1", "CxlRejReason (unknown order)")


def rest(h, comp_id, side, qty, price, what):
    """Place a GTC limit order expected to rest; returns its ClOrdID."""
    mark = h.mark()
    cid = h.new_order(comp_id, side, qty, price, tif="1")
    er = h.order_outcome(comp_id, cid, {"0"}, "%s: 150=0 for %s %s @ %s" % (what, "buy" if side == BUY else "sell", qty, price), mark)
    if er.get(39) != "0":
        raise ScenarioFailure("%s: resting order has OrdStatus %r, expected 0 (book not empty?)" % (what, er.get(39)))
    return cid


def cancel_ok(h, comp_id, cid, side, what):
    mark = h.mark()
    ccid = h.cancel(comp_id, cid, side)
    er = h.order_outcome(comp_id, ccid, {"4"}, "%s: 150=4 for the cancel of %s" % (what, cid), mark, orig=cid, msgtype="F")
    expect_eq(er, 39, "4", "OrdStatus")


def sc_ioc(h):
    bob_cid = rest(h, "BOB", SELL, "0.002", "60100.0", "BOB's ask")
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "0.005", "60100.0", tif="3")
    fill = h.order_outcome("ALICE", cid, {"F"}, "IOC fill (150=F) buy 0.005 @ 60100.0 against 0.002", mark)
    expect_num(fill, 32, "0.002", "LastQty")
    expect_num(fill, 31, "60100", "LastPx")
    done = h.order_outcome("ALICE", cid, {"4"}, "150=4 for the IOC remainder", mark)
    expect_eq(done, 39, "4", "OrdStatus")
    expect_num(done, 14, "0.002", "CumQty")
    expect_num(done, 151, "0", "LeavesQty")
    bob = h.order_outcome("BOB", bob_cid, {"F"}, "maker fill (150=F) on BOB's ask", mark)
    expect_eq(bob, 39, "2", "OrdStatus")


def sc_fok(h):
    bob_cid = rest(h, "BOB", SELL, "0.001", "60100.0", "BOB's ask")
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "1.000", "60100.0", tif="4")
    er = h.order_outcome("ALICE", cid, {"4", "8"}, "FOK 1.000 @ 60100.0 killed (150=4 or 8)", mark)
    if er.get(39) not in ("4", "8"):
        raise ScenarioFailure("OrdStatus (39) = %r for the killed FOK" % er.get(39))
    if h.fills("ALICE", cid, mark):
        raise ScenarioFailure("FOK that could not fill completely was partially filled")
    if h.fills("BOB", bob_cid, mark):
        raise ScenarioFailure("the killed FOK traded against BOB's ask")
    # BOB's ask must still be there: the cancel succeeds.
    cancel_ok(h, "BOB", bob_cid, SELL, "BOB's ask untouched by the FOK")


def sc_market(h):
    bob_cid = rest(h, "BOB", SELL, "0.001", "60050.0", "BOB's ask")
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "0.001", None, ord_type="1")
    fill = h.order_outcome("ALICE", cid, {"F"}, "fill (150=F) for market buy 0.001", mark)
    expect_eq(fill, 39, "2", "OrdStatus")
    expect_num(fill, 31, "60050", "LastPx")
    expect_num(fill, 32, "0.001", "LastQty")
    h.order_outcome("BOB", bob_cid, {"F"}, "maker fill (150=F) on BOB's ask", mark)


def sc_post_only(h):
    bob_cid = rest(h, "BOB", SELL, "0.001", "60200.0", "BOB's ask")
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "0.001", "60200.0", tif="1", exec_inst="6")
    er = h.order_outcome("ALICE", cid, {"4", "8"}, "post-only buy @ 60200.0 that would take refused (150=8 or 4)", mark)
    if h.fills("ALICE", cid, mark) or h.fills("BOB", bob_cid, mark):
        raise ScenarioFailure("post-only order traded: %s" % er.summary())
    cancel_ok(h, "BOB", bob_cid, SELL, "BOB's ask after post-only")


def sc_reduce_only(h):
    # ALICE only ever buys in this script, so her BTC-PERP position is long (or
    # flat): a reduce-only buy can only increase it.
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "0.001", "59500.0", tif="1", exec_inst="E")
    try:
        h.order_outcome("ALICE", cid, {"4", "8"}, "reduce-only buy that would increase a long refused (150=8 or 4)", mark)
    except ScenarioFailure:
        if any(m.msgtype == "8" and m.get(11) == cid and m.get(150) == "0" for m in h.since("ALICE", mark, "in")):
            try:
                cancel_ok(h, "ALICE", cid, BUY, "cleanup")
            except ScenarioFailure:
                pass
            raise ScenarioFailure("reduce-only buy that would increase ALICE's long was accepted and rests")
        raise
    if h.fills("ALICE", cid, mark):
        raise ScenarioFailure("reduce-only order that would increase the position traded")


def sc_stop(h):
    # Stop buy: fires when the mark rises to the trigger. Mark is 60000.0; 60500.0
    # is under 1% away (inside any price band) and does not fire now.
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "0.001", None, ord_type="3", stop_px="60500.0", tif="1")
    er = h.order_outcome("ALICE", cid, {"0"}, "150=0 for stop buy 0.001 trigger 60500.0", mark)
    triggered = [m for m in h.since("ALICE", mark, "in") if m.msgtype == "8" and m.get(11) == cid and m.get(150) in ("F", "L", "D")]
    if triggered:
        raise ScenarioFailure("stop below trigger fired: %s" % triggered[0].summary())
    if er.get(39) not in ("0", "A"):
        raise ScenarioFailure("OrdStatus (39) = %r for the pending stop" % er.get(39))
    cancel_ok(h, "ALICE", cid, BUY, "stop order")


def sc_reject(h):
    # Off tick (BTC-PERP tick 0.5).
    mark = h.mark()
    cid = h.new_order("ALICE", BUY, "0.001", "59000.3", tif="1")
    er = h.order_outcome("ALICE", cid, {"8"}, "150=8 for a limit price off tick (59000.3)", mark)
    expect_eq(er, 39, "8", "OrdStatus")
    if not er.get(58, "").strip():
        raise ScenarioFailure("reject for off-tick price has no Text (58)")
    # Unknown symbol: ExecutionReport 150=8 or BusinessMessageReject.
    mark = h.mark()
    cid = h.new_id()
    h.send("ALICE", "D", [(11, cid), (55, UNKNOWN_SYMBOL), (54, BUY), (38, "1"), (40, "2"), (44, "1.00"), (59, "1"), (60, utc_timestamp())])
    seq = h.sent_seq("ALICE", "D", 11, cid)
    rej = h.wait_for(
        "ALICE",
        lambda m: (m.msgtype == "8" and m.get(11) == cid)
        or (m.msgtype == "j" and (m.get(379) == cid or (seq is not None and m.get(45) == seq))),
        "reject (150=8 or 35=j) for unknown symbol %s" % UNKNOWN_SYMBOL,
        mark,
    )
    if rej.msgtype == "8" and rej.get(150) != "8":
        raise ScenarioFailure("order on unknown symbol was not rejected: %s" % rej.summary())


def sc_mass_cancel(h):
    first = rest(h, "ALICE", BUY, "0.001", "59400.0", "first bid")
    second = rest(h, "ALICE", BUY, "0.001", "59450.0", "second bid")
    mark = h.mark()
    mcid = h.new_id()
    h.send("ALICE", "q", [(11, mcid), (530, "7"), (60, utc_timestamp())])
    report = h.wait_for("ALICE", lambda m: m.msgtype == "r" and m.get(11) == mcid, "OrderMassCancelReport (35=r)", mark)
    expect_eq(report, 531, "7", "MassCancelResponse")
    expect_num(report, 533, 2, "TotalAffectedOrders")
    for cid in (first, second):
        h.wait_for(
            "ALICE",
            lambda m, cid=cid: m.msgtype == "8" and m.get(150) == "4" and (m.get(11) == cid or m.get(41) == cid),
            "150=4 for mass-cancelled order %s" % cid,
            mark,
        )


def sc_position(h):
    mark = h.mark()
    req = h.new_id()
    h.send(
        "ALICE",
        "AN",
        [
            (710, req),
            (724, "0"),
            (263, "0"),
            (1, USERS["ALICE"][2]),
            (581, "1"),
            (715, utc_date()),
            (60, utc_timestamp()),
        ],
    )
    ack = h.wait_for(
        "ALICE",
        lambda m: (m.msgtype == "AO" and m.get(710) == req) or (m.msgtype == "j" and m.get(372) == "AN"),
        "RequestForPositionsAck (35=AO) for 710=%s" % req,
        mark,
    )
    if ack.msgtype != "AO":
        raise ScenarioFailure("got %s" % describe(ack))
    expect_eq(ack, 729, "0", "PosReqStatus")
    if ack.get(728) != "0":
        raise ScenarioFailure(
            "PosReqResult (728) = %r (2 = no positions); ALICE should be long from fill/ioc/market" % ack.get(728)
        )
    total = ack.num(727)
    if total is None or total < 1:
        raise ScenarioFailure("TotalNumPosReports (727) = %r, expected >= 1" % ack.get(727))
    report = h.wait_for(
        "ALICE",
        lambda m: m.msgtype == "AP" and m.get(710) == req and m.get(55) == BTC,
        "PositionReport (35=AP) for %s" % BTC,
        mark,
    )
    long_qty = to_decimal(report.get(704)) or Decimal(0)
    short_qty = to_decimal(report.get(705)) or Decimal(0)
    if report.get(704) is None and report.get(705) is None:
        raise ScenarioFailure("PositionReport without LongQty/ShortQty (704/705): %s" % report.summary())
    if long_qty - short_qty == 0:
        raise ScenarioFailure("PositionReport shows a flat position (704=%s 705=%s)" % (report.get(704), report.get(705)))
    if report.get(730) is None:
        raise ScenarioFailure("PositionReport without SettlPrice (730)")


def sc_order_status(h):
    cid = rest(h, "ALICE", BUY, "0.001", "59300.0", "bid")
    accepted = [m for m in h.since("ALICE", 0, "in") if m.msgtype == "8" and m.get(11) == cid and m.get(150) == "0"]
    order_id = accepted[-1].get(37) if accepted else None
    mark = h.mark()
    h.send("ALICE", "H", [(11, cid), (37, order_id), (55, BTC), (54, BUY)])
    status = h.wait_for(
        "ALICE",
        lambda m: m.msgtype == "8" and m.get(150) == "I" and (m.get(11) == cid or (order_id and m.get(37) == order_id)),
        "OrderStatus ExecutionReport (150=I) for %s" % cid,
        mark,
    )
    expect_eq(status, 39, "0", "OrdStatus")
    expect_num(status, 151, "0.001", "LeavesQty")
    cancel_ok(h, "ALICE", cid, BUY, "order_status cleanup")


def sc_resend_gap_fill(h):
    """Make QuickFIX believe it missed the last few gateway messages: it then sends
    a ResendRequest itself, and the gateway must answer with PossDup resends and/or
    SequenceReset-GapFill, after which the session carries on."""
    comp_id = "ALICE"
    h.require_logged_on(comp_id)
    session = h.session(comp_id)
    expected = session.getExpectedTargetNum()
    rewind_to = max(1, expected - 5)
    mark = h.mark()
    session.setNextTargetMsgSeqNum(rewind_to)
    # Any gateway message now looks like a gap; provoke one.
    req_id = "TR-GAP-%s" % h.new_id()
    h.send(comp_id, "1", [(112, req_id)])
    # (A gateway message being processed right now may move the expectation by
    # one, so the exact BeginSeqNo is not checked.)
    ours = h.wait_for(
        comp_id,
        lambda m: m.msgtype == "2",
        "ResendRequest sent by QuickFIX after rewinding to %d" % rewind_to,
        mark,
        direction="out",
    )
    begin = to_decimal(ours.get(7))
    if begin is None or begin >= expected:
        raise ScenarioFailure("QuickFIX asked to resend from 7=%r, expected below %d" % (ours.get(7), expected))
    h.wait_for(
        comp_id,
        lambda m: (m.msgtype == "4" and m.get(123) == "Y") or (not m.is_admin and m.get(43) == "Y"),
        "PossDup resend (43=Y) or SequenceReset-GapFill (35=4 123=Y) after our ResendRequest",
        mark,
    )
    # The Heartbeat answering req_id may itself be gap-filled over (it is an admin
    # message inside the resent range), so only a fresh TestRequest below must be answered.
    for m in h.since(comp_id, mark, "in"):
        if not m.is_admin and m.get(43) == "Y" and not m.get(122):
            raise ScenarioFailure("PossDup resend without OrigSendingTime (122): %s" % m.summary())
        if m.msgtype == "4" and m.get(123) != "Y":
            raise ScenarioFailure("gateway answered a ResendRequest with SequenceReset-Reset (123!=Y): %s" % m.summary())
    h.require_logged_on(comp_id)
    test_request_roundtrip(h, comp_id)


def sc_sequence_reset(h):
    """Skip 5 of BOB's outgoing sequence numbers: the gateway must ask for them
    (ResendRequest), accept QuickFIX's SequenceReset-GapFill, and carry on."""
    comp_id = "BOB"
    h.require_logged_on(comp_id)
    session = h.session(comp_id)
    next_sender = session.getExpectedSenderNum()
    mark = h.mark()
    session.setNextSenderMsgSeqNum(next_sender + 5)
    req_id = "TR-SKIP-%s" % h.new_id()
    h.send(comp_id, "1", [(112, req_id)])
    # QuickFIX may slip in a Heartbeat between reading and setting the number,
    # so the skipped range is taken from the TestRequest actually sent.
    skipped_to = to_decimal(h.sent_seq(comp_id, "1", 112, req_id))
    resend = h.wait_for(
        comp_id,
        lambda m: m.msgtype == "2",
        "ResendRequest (35=2) from the gateway for the skipped numbers before 34=%s" % skipped_to,
        mark,
    )
    begin = to_decimal(resend.get(7))
    if begin is None or skipped_to is None or begin >= skipped_to:
        raise ScenarioFailure(
            "gateway's ResendRequest starts at 7=%r, expected below our TestRequest's 34=%s" % (resend.get(7), skipped_to)
        )
    h.wait_for(
        comp_id,
        lambda m: m.msgtype == "4" and m.get(123) == "Y",
        "SequenceReset-GapFill sent by QuickFIX",
        mark,
        direction="out",
    )
    h.require_logged_on(comp_id)
    test_request_roundtrip(h, comp_id)
    h.require_logged_on(comp_id)


def logout_all(h):
    mark = h.mark()
    for comp_id in USERS:
        if h.is_logged_on(comp_id):
            h.session(comp_id).logout("interop test done")
        else:
            raise ScenarioFailure("session %s was already down before logout%s" % (comp_id, h.session_trouble(comp_id)))
    for comp_id in USERS:
        h.wait_for(comp_id, lambda m: m.msgtype == "5", "Logout answer from the gateway", mark)
    deadline = time.monotonic() + WAIT
    while any(h.logged_on.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not h.stop():
        raise ScenarioFailure("initiator.stop() did not return within %.0fs" % STOP_TIMEOUT)


def sc_logout(h):
    logout_all(h)


# ---------------------------------------------------------------------------
# Scenario: after restart
# ---------------------------------------------------------------------------


def read_store_seqnums(store_dir, comp_id):
    """(next sender, next target) from QuickFIX's FileStore, or None."""
    path = os.path.join(store_dir, "%s-%s-%s.seqnums" % (BEGIN_STRING, comp_id, SERVER_COMP_ID))
    try:
        with open(path) as handle:
            sender, _, target = handle.read().partition(":")
        return int(sender.strip()), int(target.strip())
    except (OSError, ValueError):
        return None


def sc_reconnect(h):
    stored = h.state.get("stored_seqnums", {})
    h.wait_logged_on(list(USERS), LOGON_TIMEOUT)
    for comp_id in USERS:
        ours = h.wait_for(comp_id, lambda m: m.msgtype == "A", "our Logon", 0, 1.0, direction="out")
        theirs = h.wait_for(comp_id, lambda m: m.msgtype == "A", "gateway's Logon reply", 0, 1.0)
        for who, logon in (("our", ours), ("gateway's", theirs)):
            if logon.get(141) == "Y":
                raise ScenarioFailure("%s: %s Logon carries ResetSeqNumFlag 141=Y" % (comp_id, who))
        sender, target = stored[comp_id]
        if ours.get(34) != str(sender):
            raise ScenarioFailure("%s: our Logon went out with 34=%s, the store said %d" % (comp_id, ours.get(34), sender))
        their_seq = to_decimal(theirs.get(34))
        if their_seq is None or their_seq < target:
            raise ScenarioFailure(
                "%s: gateway's Logon has 34=%s but it had already sent up to %d before the restart (sequence reset?)"
                % (comp_id, theirs.get(34), target - 1)
            )
        for m in h.since(comp_id, 0, "in"):
            if m.msgtype == "4" and m.get(123) != "Y":
                raise ScenarioFailure("%s: gateway sent a SequenceReset-Reset after the restart: %s" % (comp_id, m.summary()))
    for comp_id in USERS:
        test_request_roundtrip(h, comp_id)
    cid = rest(h, "ALICE", BUY, "0.001", "59200.0", "bid after restart")
    cancel_ok(h, "ALICE", cid, BUY, "bid after restart")


BEFORE_RESTART = [
    ("logon", sc_logon),
    ("heartbeat", sc_heartbeat),
    ("test_request", sc_test_request),
    ("limit_new", sc_limit_new),
    ("fill", sc_fill),
    ("replace", sc_replace),
    ("cancel", sc_cancel),
    ("cancel_unknown", sc_cancel_unknown),
    ("ioc", sc_ioc),
    ("fok", sc_fok),
    ("market", sc_market),
    ("post_only", sc_post_only),
    ("reduce_only", sc_reduce_only),
    ("stop", sc_stop),
    ("reject", sc_reject),
    ("mass_cancel", sc_mass_cancel),
    ("position", sc_position),
    ("order_status", sc_order_status),
    ("resend_gap_fill", sc_resend_gap_fill),
    ("sequence_reset", sc_sequence_reset),
    ("logout", sc_logout),
]

AFTER_RESTART = [
    ("reconnect", sc_reconnect),
    ("logout", sc_logout),
]

# Scenarios after which nothing else can run when they fail.
FATAL = {"logon", "reconnect", "logout"}


# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------


class Reporter:
    def __init__(self):
        self.lock = threading.Lock()
        self.passed = 0
        self.failed = 0
        self.current = "setup"
        self.finished = False

    def ok(self, name):
        with self.lock:
            if self.finished:
                return
            self.passed += 1
            print("ok %s" % name, flush=True)

    def fail(self, name, why):
        with self.lock:
            if self.finished:
                return
            self.failed += 1
            print("FAIL: %s: %s" % (name, one_line(why)), flush=True)

    def finish(self):
        with self.lock:
            if self.finished:
                return None
            self.finished = True
            print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
            return 0 if self.failed == 0 else 1


def hard_exit(code):
    sys.stdout.flush()
    sys.stderr.flush()
    # QuickFIX's threads and SWIG destructors must not get a say at shutdown.
    os._exit(code)


def start_watchdog(reporter, harness_holder, seconds):
    def fire():
        reporter.fail(reporter.current, "overall timeout of %.0fs exceeded" % seconds)
        reporter.finish()
        harness = harness_holder.get("h")
        if harness is not None:
            harness.stop(timeout=3.0, force=True)
        hard_exit(1)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def run(args, reporter, holder):
    if fix is None:
        reporter.fail("setup", "cannot import quickfix (%s); pip install --require-hashes -r tests/fix/requirements.txt" % QUICKFIX_IMPORT_ERROR)
        return
    try:
        dictionary = find_fix44_xml()
    except ScenarioFailure as error:
        reporter.fail("setup", str(error))
        return

    store_dir = os.path.join(args.store, "store")
    log_dir = os.path.join(args.store, "log")
    if args.phase in ("all", "before-restart"):
        scenarios = BEFORE_RESTART
        if not args.keep_store:
            for directory in (store_dir, log_dir):
                shutil.rmtree(directory, ignore_errors=True)
        stored = None
    else:
        scenarios = AFTER_RESTART
        stored = {c: read_store_seqnums(store_dir, c) for c in USERS}
        missing = [c for c, s in stored.items() if s is None or s[0] <= 1]
        if missing:
            reporter.fail(
                "reconnect",
                "no usable QuickFIX store for %s under %s; run --phase before-restart with the same --store first"
                % (", ".join(missing), store_dir),
            )
            return

    h = Harness(args, dictionary)
    holder["h"] = h
    if stored:
        h.state["stored_seqnums"] = stored
    try:
        h.start()
    except Exception as error:
        reporter.fail("setup", "cannot start the QuickFIX initiator: %s" % one_line(error))
        return

    for name, scenario in scenarios:
        reporter.current = name
        if args.only and name not in args.only and name not in FATAL:
            continue
        mark = h.mark()
        try:
            scenario(h)
            h.check_no_session_rejects(mark)
            if h.internal_errors:
                raise ScenarioFailure("error in a QuickFIX callback: %s" % one_line(h.internal_errors[-1].splitlines()[-1]))
        except ScenarioFailure as error:
            reporter.fail(name, str(error))
        except Exception as error:  # a bug here or a QuickFIX exception
            traceback.print_exc(file=sys.stderr)
            reporter.fail(name, "%s: %s" % (type(error).__name__, error))
        else:
            reporter.ok(name)
            continue
        if name in FATAL or not args.keep_going:
            break
        for comp_id in USERS:
            h.mass_cancel_quietly(comp_id)

    if not h.stopped:
        if not h.stop(timeout=5.0):
            h.stop(timeout=3.0, force=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="QuickFIX/Python FIX 4.4 interoperability test for cascade-gateway.",
        epilog="Prints 'ok <scenario>' per passed scenario, 'FAIL: <scenario>: <why>' per failure and "
        "'N passed, M failed' at the end; exit status 0 only if everything passed. "
        "FIX44.xml: $FIX44_XML, else the copy installed by the quickfix wheel.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="gateway host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="gateway FIX port")
    parser.add_argument(
        "--store",
        required=True,
        help="working directory: QuickFIX file store in STORE/store, logs in STORE/log; "
        "must be the same for before-restart and after-restart",
    )
    parser.add_argument(
        "--phase",
        choices=["all", "before-restart", "after-restart"],
        default="all",
        help="all (default) = before-restart; after-restart reconnects with the store left by before-restart",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_OVERALL_TIMEOUT, help="overall timeout in seconds (default 120)")
    parser.add_argument("--keep-going", action="store_true", help="run the remaining scenarios after a failure")
    parser.add_argument(
        "--keep-store",
        action="store_true",
        help="before-restart/all: do not wipe STORE/store and STORE/log first (sequence numbers then continue)",
    )
    parser.add_argument("--only", action="append", metavar="SCENARIO", help="run only these scenarios (plus logon/logout); repeatable")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every FIX message summary to stderr")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    known = {name for name, _ in BEFORE_RESTART + AFTER_RESTART}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        print("unknown scenario(s) for --only: %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(known))), file=sys.stderr)
        sys.exit(2)
    args.store = os.path.abspath(args.store)
    reporter = Reporter()
    holder = {}
    start_watchdog(reporter, holder, args.timeout)
    try:
        os.makedirs(args.store, exist_ok=True)
        run(args, reporter, holder)
    except Exception as error:  # pragma: no cover - last line of defence
        traceback.print_exc(file=sys.stderr)
        reporter.fail(reporter.current, "%s: %s" % (type(error).__name__, error))
    code = reporter.finish()
    hard_exit(1 if code is None else code)


if __name__ == "__main__":
    main()
