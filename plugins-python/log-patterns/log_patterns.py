"""log-patterns: counts the lines of your jobs' logs that match patterns, a plugin in Python.

A long job says it is in trouble in its log before anyone looks: a Python
traceback, "CUDA out of memory", "Killed process", a step that stopped writing.
On every sampling tick this plugin reads what was appended to the files in one
directory (``files``, ``*.log`` by default; a file's whole content the first time
it is seen) and counts the lines that match each pattern (Python regular
expressions, searched anywhere in the line).

| metric | labels | meaning |
| --- | --- | --- |
| ``log_pattern_lines_total`` | ``file``, ``pattern`` | lines matching the pattern since the file was first seen or replaced |
| ``log_pattern_last_match_age_seconds`` | ``file``, ``pattern`` | seconds since a line written while the plugin watched matched (absent before one) |
| ``log_last_write_age_seconds`` | ``file`` | seconds since the file was last written: a job that stopped logging |
| ``log_unread_bytes`` | ``file`` | bytes not read yet (a large file is read ``read_kib`` per tick) |
| ``log_files`` | | files watched |

A file that shrinks or is replaced (rotated) is read again from its start and its
counts start over, as a Prometheus counter does after a reset. So does every
count when the host restarts: the files are read again.

Configuration (``log-patterns.toml`` beside the ``.wasm``):

| key | default | meaning |
| --- | --- | --- |
| ``directory`` | required | absolute path of the directory holding the logs |
| ``files`` | ``"*.log"`` | which file names in it to read (shell-style pattern, not recursive) |
| ``max_files`` | ``50`` | read at most this many files (the first in name order) |
| ``read_kib`` | ``1024`` | read at most this much per tick, all files together (and for at most 30 ms) |
| ``[patterns]`` | ``error``, ``traceback``, ``oom`` (see ``DEFAULT_PATTERNS``) | name = regular expression; replaces the defaults |

::

    directory = "/srv/jobs/logs"
    files = "*.log"

    [patterns]
    oom = 'CUDA out of memory|MemoryError|Killed process'
    traceback = 'Traceback \\(most recent call last\\)'
    nan = 'loss[ =:]+nan'

Capability ``fs-read``: the directory, granted by you::

    monitor plugins enable log-patterns --grant fs-read:/srv/jobs/logs

Alert on it like on any metric, e.g. an OOM in the last ten minutes
(``log_pattern_last_match_age_seconds``, ``matchers = { pattern = "oom" }``,
``op = "<"``, ``value = 600``), or a job silent for an hour
(``log_last_write_age_seconds``, ``op = ">"``, ``value = 3600``).

Build (see the README's "Write your first plugin in Python")::

    componentize-py -d wit -w metric-provider componentize log_patterns \\
        -p plugins-python/log-patterns -p sdk/python-plugin -o log-patterns.wasm
"""

import fnmatch
import os
import re
import time
from dataclasses import dataclass, field

from monitor_plugin import Error, Metric, MetricProvider, capability, export, log, metric

# Patterns that start with plain text are searched fastest; (?i) and \b cost
# several times more, and the plugin then reads less per tick.
DEFAULT_PATTERNS = {
    "error": r"error|Error|ERROR",
    "traceback": r"Traceback \(most recent call last\)",
    "oom": r"out of memory|MemoryError|oom-kill|Killed process",
}
# Files are read in pieces of this size ...
PIECE = 32 * 1024
# ... until this much time went by in a tick, well inside the host's deadline.
TIME_BUDGET_SECONDS = 0.03
# A line longer than this is counted in pieces rather than held whole.
MAX_LINE = 64 * 1024


@dataclass
class Config:
    directory: str = ""
    files: str = "*.log"
    max_files: int = 50
    read_kib: int = 1024
    patterns: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PATTERNS))
    compiled: dict[str, re.Pattern[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.directory:
            raise ValueError(
                'missing `directory`: set it in log-patterns.toml to the directory of the logs, e.g. directory = "/srv/jobs/logs"'
            )
        if not self.directory.startswith("/"):
            raise ValueError(f'directory = "{self.directory}": must be an absolute path, e.g. "/srv/jobs/logs"')
        if self.max_files < 1 or self.read_kib < 1:
            raise ValueError("max_files and read_kib must be at least 1")
        for name, expression in self.patterns.items():
            try:
                self.compiled[name] = re.compile(expression, re.MULTILINE)
            except re.error as e:
                raise ValueError(f"patterns.{name} = '{expression}': not a regular expression: {e}") from None


@dataclass
class Watched:
    """What has been read of one file."""

    identity: int  # the file's inode: another number means the file was replaced
    offset: int = 0
    seen_size: int = 0  # its size when the plugin started: lines before are old news
    partial: bytes = b""
    counts: dict[str, int] = field(default_factory=dict)
    last_match: dict[str, float] = field(default_factory=dict)


class LogPatterns(MetricProvider):
    NAME = "log-patterns"
    VERSION = "0.1.0"
    SUMMARY = "counts log lines matching patterns (tracebacks, OOMs) in a directory"
    CAPABILITIES = [capability("fs-read", "reads the log files in the directory you grant")]
    CONFIG = Config

    config: Config

    def __init__(self) -> None:
        self.watched: dict[str, Watched] = {}
        self.reported: set[str] = set()
        self.started = False

    def collect(self) -> list[Metric]:
        directory = self.config.directory
        try:
            names = sorted(n for n in os.listdir(directory) if fnmatch.fnmatchcase(n, self.config.files))
        except FileNotFoundError:
            raise Error(
                f"{directory} is not visible: it does not exist, or it is not granted "
                f"(monitor plugins enable {self.NAME} --grant fs-read:{directory})"
            ) from None
        except OSError as e:
            raise Error(f"cannot read {directory}: {e.strerror}") from None
        if len(names) > self.config.max_files:
            self.warn_once(f"{len(names)} files match {self.config.files}; reading the first {self.config.max_files}")
            names = names[: self.config.max_files]
        for gone in set(self.watched) - set(names):
            del self.watched[gone]

        now = time.time()
        budget = self.config.read_kib * 1024
        deadline = time.monotonic() + TIME_BUDGET_SECONDS
        out = [metric("log_files", len(names))]
        for name in names:
            path = os.path.join(directory, name)
            try:
                stat = os.stat(path)
                state = self.watched.get(name)
                if state is None or state.identity != stat.st_ino or stat.st_size < state.offset:
                    old = stat.st_size if not self.started else 0
                    state = self.watched[name] = Watched(identity=stat.st_ino, seen_size=old)
                if stat.st_size > state.offset:
                    budget -= self.read(path, state, stat.st_size, budget, deadline, now)
            except OSError as e:
                self.warn_once(f"cannot read {path}: {e.strerror}")
                continue
            labels = {"file": name}
            out.append(metric("log_last_write_age_seconds", max(0.0, now - stat.st_mtime), "seconds", labels))
            out.append(metric("log_unread_bytes", stat.st_size - state.offset, "bytes", labels))
            for pattern in self.config.compiled:
                labels = {"file": name, "pattern": pattern}
                out.append(metric("log_pattern_lines_total", state.counts.get(pattern, 0), "", labels))
                if pattern in state.last_match:
                    age = now - state.last_match[pattern]
                    out.append(metric("log_pattern_last_match_age_seconds", age, "seconds", labels))
        self.started = True
        return out

    def read(self, path: str, state: Watched, size: int, budget: int, deadline: float, now: float) -> int:
        """Reads new bytes of ``path`` piece by piece, within the byte and time
        budgets, and counts their complete lines; returns the bytes read."""
        used = 0
        with open(path, "rb") as f:
            f.seek(state.offset)
            while used < budget and state.offset < size and time.monotonic() < deadline:
                piece = f.read(min(PIECE, budget - used))
                if not piece:
                    break
                used += len(piece)
                state.offset += len(piece)
                self.count(state, piece, now)
        return used

    def count(self, state: Watched, piece: bytes, now: float) -> None:
        data = state.partial + piece
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) <= MAX_LINE:
            state.partial = data
            return
        if end == 0:
            end = len(data)
        text, state.partial = data[:end].decode("utf-8", "replace"), data[end:]
        new = state.offset > state.seen_size
        for pattern, expression in self.config.compiled.items():
            matched = count_lines(expression, text)
            if matched:
                state.counts[pattern] = state.counts.get(pattern, 0) + matched
                if new:
                    state.last_match[pattern] = now

    def warn_once(self, problem: str) -> None:
        if problem not in self.reported:
            self.reported.add(problem)
            log.warn(problem)


def count_lines(expression: re.Pattern[str], text: str) -> int:
    """The lines of ``text`` in which ``expression`` matches: one search through the
    whole text (matches are rare), then each hit confirmed on its own line."""
    lines = pos = 0
    while pos < len(text) and (found := expression.search(text, pos)) is not None:
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if found.end() <= end or expression.search(text, start, end):
            lines += 1
        pos = end + 1
    return lines


Plugin, Metrics = export(LogPatterns)
