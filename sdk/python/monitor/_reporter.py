"""The one sender of a process: a queue the pipeline fills and a daemon thread
that empties it into the host's API.

The pipeline only ever takes a lock for a few dictionary operations; the thread
does the network. Entries are kept in the order they were made; a progress
report (`advance`, `done`, `percent`, a message) is merged into the node's
newest entry while that entry waits, so a loop of a million `advance()` calls
becomes a handful of updates.
"""

from __future__ import annotations

import atexit
import collections
import http.client
import json
import logging
import numbers
import os
import secrets
import ssl
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from ._blake3 import proof

log = logging.getLogger("monitor")

MAX_BATCH = 8192
"""Updates per request: the host takes at most this many."""
MAX_BODY = 1 << 20
"""Bytes per request body (the host refuses bodies over 2 MiB)."""
MAX_QUEUE = 100_000
"""Queued updates past which the oldest progress reports are dropped."""
INTERVAL = 0.1
"""Seconds between requests while updates keep coming (a full batch goes at once)."""
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
REQUEST_TIMEOUT = 30.0
HEALTH_TIMEOUT = 5.0
EXIT_TIMEOUT = 2.0
"""How long the interpreter's exit waits for queued updates."""
MAX_MESSAGE_BYTES = 4096
MAX_LOGGED_REFUSALS = 100

ADVANCE, DONE, PERCENT = "advance", "done", "percent"
REPORTS = frozenset((ADVANCE, DONE, PERCENT))
"""Operations that may be merged, and dropped when the queue overflows."""

def _plain(value: Any) -> Any:
    """Numbers of other kinds (numpy's, Fraction) as JSON numbers."""
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON")


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False, default=_plain)
_RESUMABLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Entry:
    """One queued update: `value` is the units of advance/done or the percentage."""

    __slots__ = ("seq", "path", "op", "value", "fields")

    def __init__(self, seq: int, path: str, op: str, value: Any, fields: Optional[Dict[str, Any]]):
        self.seq = seq
        self.path = path
        self.op = op
        self.value = value
        self.fields = fields

    def merge(self, fields: Dict[str, Any]) -> None:
        """Takes a later update's message and metadata, as the host would apply them in turn."""
        if self.fields is None:
            self.fields = dict(fields)
            return
        for key, value in fields.items():
            if key == "metadata" and isinstance(self.fields.get("metadata"), dict) and isinstance(value, dict):
                self.fields["metadata"] = {**self.fields["metadata"], **value}
            else:
                self.fields[key] = value


class Unreachable(Exception):
    """The host could not take the request now; the reason says why."""


class Target:
    """Where the host is, what it is sent as a token, and whether it can follow
    this process (`local`: it runs on this machine, as this user); `tls`, over
    https: what its certificate is checked against."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        url: str,
        conn: Optional[http.client.HTTPConnection],
        local: bool,
        tls: Optional[ssl.SSLContext] = None,
    ) -> None:
        self.host, self.port, self.token, self.url, self.conn, self.local = host, port, token, url, conn, local
        self.tls = tls

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        return _connection(self.host, self.port, timeout, self.tls)


def _connection(host: str, port: int, timeout: float, tls: Optional[ssl.SSLContext]) -> http.client.HTTPConnection:
    if tls is None:
        return http.client.HTTPConnection(host, port, timeout=timeout)
    return http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)


def _tls(cafile: Optional[str]) -> ssl.SSLContext:
    """Certificates checked against `cafile` (the host's `tls-ca.pem`, `MONITOR_CA`), else the system's roots."""
    try:
        return ssl.create_default_context(cafile=cafile or None)
    except OSError as e:  # ssl.SSLError included
        raise Unreachable(f"cannot use the certificate file {cafile} (MONITOR_CA or daemon.json): {e}") from None


def _ours(pid: object) -> bool:
    """Whether `pid` is a running process of this user, as far as this system tells."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if not os.path.isdir("/proc/self"):
        return True  # no /proc to ask: the token could be read, so most likely the same user
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def _daemon_pid(data: str) -> Optional[int]:
    try:
        with open(os.path.join(data, "daemon.json"), encoding="utf-8") as f:
            pid = json.load(f).get("pid")
        return pid if isinstance(pid, int) else None
    except (OSError, ValueError, AttributeError):
        return None


def data_dir() -> str:
    """The host's data directory, as the host finds it."""
    explicit = os.environ.get("MONITOR_DATA_DIR")
    if explicit:
        return explicit
    state = os.environ.get("XDG_STATE_HOME")
    if state:
        return os.path.join(state, "monitor")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "monitor")


def _split_addr(addr: str) -> Tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"'{addr}' is not an address like 127.0.0.1:8750")
    return host.strip("[]"), int(port)


def _error_text(body: bytes, status: int) -> str:
    try:
        answer = json.loads(body)
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            return answer["error"]
    except ValueError:
        pass
    return f"the host answered {status}"


def clip_message(text: str) -> str:
    """`text` cut to what the host keeps of a message, at a character boundary."""
    raw = text.encode()
    if len(raw) <= MAX_MESSAGE_BYTES:
        return text
    return raw[:MAX_MESSAGE_BYTES].decode(errors="ignore")


class Reporter:
    """The process's queue and sender thread."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """A fresh, empty reporter (at start, and in the child after a fork)."""
        inherited = getattr(self, "target", None)
        if inherited is not None and inherited.conn is not None:
            inherited.conn.close()  # this process's copy of the parent's connection
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # the sender waits here for work
        self.poke = threading.Condition(self.lock)  # and here between requests: flush() cuts the wait short
        self.settled = threading.Condition(self.lock)  # flush() waits here
        self.queue: "collections.deque[Entry]" = collections.deque()
        self.open: Dict[str, Entry] = {}  # per node, its newest entry while it may be merged into
        self.seq = 0  # of the newest entry
        self.in_flight: List[Entry] = []  # taken by the sender, not yet settled
        self.limit = MAX_QUEUE
        self.dropped = 0  # progress reports dropped because the queue was full
        self.dropped_told = False
        self.thread: Optional[threading.Thread] = None
        self.urgent = False
        self.failures = 0  # delivery attempts that failed, ever
        self.failed_at = 0.0
        # The sender's own state.
        self.target: Optional[Target] = None
        self.down: Optional[str] = None  # why delivery fails, while it does
        self.down_since = 0.0
        self.no_pid = False
        self.refusals: set = set()
        self.look_again = False

    def rediscover(self) -> None:
        """Finds the host afresh before the next request (after the environment or data directory changed)."""
        self.look_again = True

    # The pipeline's side: called from any thread, never waits on the network.
    # (Node.advance, the hot path, does what `report` does for an advance, inline.)

    def report(self, path: str, op: str, value: Any, fields: Optional[Dict[str, Any]]) -> None:
        """A `done`, `percent`, or (as an advance of 0) a message, merged when it can be."""
        with self.lock:
            entry = self.open.get(path)
            if entry is not None:
                merged = True
                if op is ADVANCE:
                    entry.value += value
                elif op is DONE and (entry.op is ADVANCE or entry.op is DONE):
                    entry.op, entry.value = DONE, value
                elif op is PERCENT and entry.op is PERCENT:
                    entry.value = value
                else:
                    merged = False
                if merged:
                    if fields:
                        entry.merge(fields)
                    return
            self._append(path, op, value, dict(fields) if fields else None)

    def put(self, path: str, op: str, fields: Optional[Dict[str, Any]]) -> None:
        """Any other operation: queued in order, never merged."""
        with self.lock:
            self._append(path, op, None, fields)

    def _append(self, path: str, op: str, value: Any, fields: Optional[Dict[str, Any]]) -> None:
        self.seq += 1
        entry = Entry(self.seq, path, op, value, fields)
        queue = self.queue
        if not queue:
            self.wake.notify()
        queue.append(entry)
        if op in REPORTS:
            self.open[path] = entry
        else:
            self.open.pop(path, None)
        if len(queue) > self.limit:
            self._shed()
        if self.thread is None:
            self._start()

    def _shed(self) -> None:
        """Drops the oldest progress reports, keeping every other operation."""
        excess = len(self.queue) - MAX_QUEUE * 9 // 10
        kept: "collections.deque[Entry]" = collections.deque()
        dropped = 0
        for entry in self.queue:
            if dropped < excess and entry.op in REPORTS:
                dropped += 1
                if self.open.get(entry.path) is entry:
                    del self.open[entry.path]
            else:
                kept.append(entry)
        self.queue = kept
        self.limit = max(MAX_QUEUE, len(kept) + MAX_QUEUE // 10)
        self.dropped += dropped  # logged by the sender: a logging handler may report progress itself

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="monitor-reporter", daemon=True)
        self.thread.start()

    def flush(self, timeout: Optional[float] = None, give_up_when_down: bool = False) -> bool:
        """Waits until every update queued so far is settled: delivered, or refused
        by the host. False if `timeout` seconds pass first (or, with
        `give_up_when_down`, once an attempt fails)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            target = self.seq
            failures = self.failures
            while self._oldest_pending() <= target:
                if give_up_when_down and self.failures > failures:
                    return False
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if left <= 0:
                    return False
                self.urgent = True
                self.poke.notify()
                self.settled.wait(left)
            return True

    def _oldest_pending(self) -> float:
        if self.in_flight:
            return self.in_flight[0].seq
        if self.queue:
            return self.queue[0].seq
        return float("inf")

    # The sender thread.

    def _run(self) -> None:
        backoff = 0.0
        last_request = 0.0
        while True:
            with self.lock:
                while not self.queue:
                    self.wake.wait()
                while not self.urgent:
                    if backoff:
                        until = self.failed_at + backoff
                    elif len(self.queue) >= MAX_BATCH:
                        break
                    else:
                        until = last_request + INTERVAL
                    wait = until - time.monotonic()
                    if wait <= 0:
                        break
                    self.poke.wait(wait)
                self.urgent = False
                batch = self._take()
                tell_dropped = self.dropped > 0 and not self.dropped_told
                self.dropped_told = self.dropped_told or tell_dropped
            if tell_dropped:
                log.warning(
                    "monitor: more than %d updates are waiting for the host; the oldest progress reports are dropped "
                    "(starts, finishes and failures are kept)",
                    MAX_QUEUE,
                )
            last_request = time.monotonic()
            try:
                delivered = self._deliver(batch)
            except Exception:  # a bug here must not end the thread: keep the updates and go on
                log.exception("monitor: internal error while sending progress; retrying")
                self._requeue(batch)
                delivered = False
            if delivered:
                backoff = 0.0
            else:
                backoff = min(max(backoff * 2, BACKOFF_FIRST), BACKOFF_MAX)

    def _take(self) -> List[Entry]:
        batch = []
        queue, open_ = self.queue, self.open
        for _ in range(min(len(queue), MAX_BATCH)):
            entry = queue.popleft()
            if open_.get(entry.path) is entry:
                del open_[entry.path]
            batch.append(entry)
        if not queue:
            self.limit = MAX_QUEUE
        self.in_flight = batch
        return batch

    def _requeue(self, entries: List[Entry]) -> None:
        with self.lock:
            present = set(map(id, self.in_flight))
            self.queue.extendleft(reversed([e for e in entries if id(e) in present]))
            self.in_flight = []
            self.failures += 1
            self.failed_at = time.monotonic()
            self.settled.notify_all()

    def _settled(self, remaining: List[Entry]) -> None:
        with self.lock:
            self.in_flight = remaining
            self.settled.notify_all()

    def _encode(self, entry: Entry) -> Optional[bytes]:
        update: Dict[str, Any] = {"path": entry.path, "op": entry.op}
        if entry.op is ADVANCE or entry.op is DONE:
            update["units"] = entry.value
        elif entry.op is PERCENT:
            update["percent"] = entry.value
        if entry.fields:
            update.update(entry.fields)
            if "pid" in update and (self.no_pid or not (self.target and self.target.local)):
                del update["pid"]  # the host could not follow it: it would refuse the update
        try:
            return _ENCODER.encode(update).encode()
        except (TypeError, ValueError) as e:
            self._refused(entry, f"{entry.path}: {entry.op} cannot be sent as JSON: {e}")
            return None

    def _requests(self, entries: List[Entry]) -> "collections.deque[Tuple[List[Entry], List[bytes]]]":
        """`entries` encoded, in groups that each fit one request; unencodable ones are refused here."""
        groups: "collections.deque[Tuple[List[Entry], List[bytes]]]" = collections.deque()
        group: List[Entry] = []
        parts: List[bytes] = []
        size = 0
        for entry in entries:
            part = self._encode(entry)
            if part is None:
                continue
            if group and size + len(part) + 1 > MAX_BODY:
                groups.append((group, parts))
                group, parts, size = [], [], 0
            group.append(entry)
            parts.append(part)
            size += len(part) + 1
        if group:
            groups.append((group, parts))
        return groups

    def _deliver(self, batch: List[Entry]) -> bool:
        """Sends `batch` in order. True when every entry is settled; False when the
        host could not take it (what is left goes back to the front of the queue)."""
        try:
            self._connect()  # first: whether the host can follow a pid decides how updates are written
        except Unreachable as e:
            self._fail(batch, str(e))
            return False
        work = self._requests(batch)
        self._settled([e for group, _ in work for e in group])
        while work:
            entries, parts = work[0]
            try:
                status, body = self._post(parts)
            except Unreachable as e:
                self._fail([x for group, _ in work for x in group], str(e))
                return False
            if status == 200:
                work.popleft()
                self._apply(entries, body)
                self._settled([x for group, _ in work for x in group])
            elif status in (400, 413, 422) and len(entries) > 1:
                # Something in the request is refused as a whole: halve it until
                # the update at fault stands alone.
                work.popleft()
                half = len(entries) // 2
                work.appendleft((entries[half:], parts[half:]))
                work.appendleft((entries[:half], parts[:half]))
            elif status in (400, 413, 422):
                message = _error_text(body, status)
                fields = entries[0].fields or {}
                if "'pid'" in message and "pid" in fields and not self.no_pid:
                    self.no_pid = True
                    log.warning(
                        "monitor: the host at %s does not take 'pid' (it is older than this reporter); "
                        "updates go without it, so it records no process resources on the nodes",
                        self.target.url if self.target else "?",
                    )
                    work = self._requests([x for group, _ in work for x in group])
                    continue
                work.popleft()
                self._refused(entries[0], message)
                self._settled([x for group, _ in work for x in group])
            else:
                message = _error_text(body, status)
                if status in (401, 403, 404):
                    self._forget()  # perhaps a new host, with a new token, in its place: look again
                self._fail([x for group, _ in work for x in group], f"the host at {self._url()} answered {status}: {message}")
                return False
        if self.down is not None:
            elapsed = time.monotonic() - self.down_since
            log.warning("monitor: progress is delivered again to %s (after %.1f s)", self._url(), elapsed)
            self.down = None
        return True

    def _fail(self, unsettled: List[Entry], reason: str) -> None:
        self._requeue(unsettled)
        if self.down is None:
            self.down = reason
            self.down_since = time.monotonic()
            with self.lock:
                waiting = len(self.queue)
            log.warning(
                "monitor: %s; progress is kept (%d updates waiting) and sent once the host answers",
                reason,
                waiting,
            )

    def _apply(self, entries: List[Entry], body: bytes) -> None:
        try:
            results = json.loads(body)["results"]
        except (ValueError, KeyError, TypeError):
            results = []
        for entry, result in zip(entries, results):
            if isinstance(result, dict) and "error" in result:
                self._refused(entry, str(result["error"]))

    def _refused(self, entry: Entry, message: str) -> None:
        if message in self.refusals or len(self.refusals) > MAX_LOGGED_REFUSALS:
            return
        self.refusals.add(message)
        if len(self.refusals) > MAX_LOGGED_REFUSALS:
            log.warning("monitor: more than %d different updates were refused; further ones are not logged", MAX_LOGGED_REFUSALS)
            return
        log.warning("monitor: the host refused an update (%s %s), dropped: %s", entry.op, entry.path, message)

    def _url(self) -> str:
        return self.target.url if self.target else "the host"

    def _forget(self) -> None:
        if self.target is not None and self.target.conn is not None:
            self.target.conn.close()
        self.target = None

    def _post(self, parts: List[bytes]) -> Tuple[int, bytes]:
        body = b'{"updates":[' + b",".join(parts) + b"]}"
        for attempt in range(2):
            fresh = self.target is None or self.target.conn is None
            target = self._connect()
            conn = target.conn
            assert conn is not None
            try:
                conn.request(
                    "POST",
                    "/v1/progress",
                    body,
                    {"Authorization": f"Bearer {target.token}", "Content-Type": "application/json"},
                )
                response = conn.getresponse()
                answer = response.read()
                if response.will_close:
                    conn.close()
                    target.conn = None
                return response.status, answer
            except _RESUMABLE as e:
                self._forget()
                if fresh or attempt:
                    raise Unreachable(f"cannot reach the host at {target.url}: {e}") from None
                # A kept-alive connection the host had closed: once more on a new one.
            except (OSError, http.client.HTTPException) as e:
                self._forget()
                raise Unreachable(f"cannot reach the host at {target.url}: {e}") from None
        raise AssertionError("unreachable")

    def _connect(self) -> Target:
        """The host, found afresh unless a connection to it is open."""
        if self.look_again:
            self.look_again = False
            self._forget()
        target = self.target
        if target is not None and target.conn is None:
            target.conn = target.connection(REQUEST_TIMEOUT)
        if target is None:
            target = self._discover()
            if target.conn is None:
                target.conn = target.connection(REQUEST_TIMEOUT)
            self.target = target
            self.no_pid = False
        return target

    def _discover(self) -> Target:
        url, token = os.environ.get("MONITOR_URL"), os.environ.get("MONITOR_TOKEN")
        if url and token and token.strip():
            return self._from_env(url, token.strip())
        return self._from_data_dir(data_dir())

    def _from_env(self, url: str, token: str) -> Target:
        parsed = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        try:
            port = parsed.port or 80
        except ValueError:
            port = 0
        if parsed.scheme not in ("http", "https") or not parsed.hostname or not port:
            raise Unreachable(f"MONITOR_URL '{url}' is not a host's address like http://127.0.0.1:8750")
        base = f"{parsed.scheme}://{parsed.netloc}"
        tls = _tls(os.environ.get("MONITOR_CA")) if parsed.scheme == "https" else None
        conn, health = self._health(parsed.hostname, port, "", f"cannot reach the host at {base} (MONITOR_URL)", tls)
        # A pid means something only to the host of this machine and user: the
        # one this user's data directory names.
        pid = health.get("pid")
        local = pid is not None and pid == _daemon_pid(data_dir()) and _ours(pid)
        return Target(parsed.hostname, port, token, base, conn, local, tls)

    def _health(
        self, host: str, port: int, query: str, unreachable: str, tls: Optional[ssl.SSLContext]
    ) -> Tuple[Optional[http.client.HTTPConnection], Dict[str, Any]]:
        """`GET /v1/health?QUERY`: the connection, kept for the next request if it can be, and the answer."""
        conn = _connection(host, port, HEALTH_TIMEOUT, tls)
        try:
            conn.request("GET", f"/v1/health{query}")
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise Unreachable(f"{unreachable}: {e}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if response.status != 200 or not isinstance(answer, dict):
            conn.close()
            raise Unreachable(f"{unreachable}: it answered {response.status}, not as a monitor host")
        if response.will_close:
            conn.close()
            return None, answer
        conn.timeout = REQUEST_TIMEOUT
        if conn.sock is not None:
            conn.sock.settimeout(REQUEST_TIMEOUT)
        return conn, answer

    def _from_data_dir(self, data: str) -> Target:
        info_path = os.path.join(data, "daemon.json")
        try:
            with open(info_path, encoding="utf-8") as f:
                info = json.load(f)
            addr, cafile = info["addr"], info.get("tls")
            host, port = _split_addr(addr)
        except FileNotFoundError:
            raise Unreachable(f"no host is running on {data} (no daemon.json); start one with 'monitor run'") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise Unreachable(f"cannot read {info_path}: {e}") from None
        token_path = os.path.join(data, "api-token")
        try:
            with open(token_path, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            raise Unreachable(f"the host's token {token_path} cannot be read ({e}); run as the user who started it") from None
        tls = _tls(cafile) if cafile else None
        url = f"{'https' if tls else 'http'}://{addr}"
        # The token goes only to a host that proves it holds it: after a crash
        # another program may answer on the old port.
        challenge = secrets.token_hex(16)
        impostor = f"something other than the host of {data} answers at {url}; it is not sent the token"
        try:
            conn, health = self._health(
                host, port, f"?challenge={challenge}", f"cannot reach the host at {url} (from {info_path})", tls
            )
        except Unreachable as e:
            raise Unreachable(impostor if "not as a monitor host" in str(e) else str(e)) from None
        if health.get("proof") != proof(token, challenge):
            if conn is not None:
                conn.close()
            raise Unreachable(impostor)
        return Target(host, port, token, url, conn, _ours(health.get("pid")), tls)


REPORTER = Reporter()

if hasattr(os, "register_at_fork"):
    # The child starts with an empty queue and no thread: the parent delivers what it queued.
    os.register_at_fork(after_in_child=REPORTER.reset)


def _at_exit() -> None:
    if REPORTER.thread is not None:
        REPORTER.flush(EXIT_TIMEOUT, give_up_when_down=True)


atexit.register(_at_exit)
