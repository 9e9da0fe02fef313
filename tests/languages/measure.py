#!/usr/bin/env python3
"""Measure plugins in the real `monitor` host, one at a time, for BENCHMARKS.md's
"Python plugins" and "JavaScript plugins" tables (see tests/languages/README.md).

    python3 tests/languages/measure.py --monitor target/release/monitor --baseline \
        fx-empty=target/wasm/wasm32-wasip2/plugin/fx_empty.wasm py-empty=py-empty.wasm

Each NAME=FILE is measured alone, in fresh plugin and data directories under a
temporary directory (FILE copied in as NAME.wasm):

1. the file's size;
2. `/usr/bin/time -f "%e %M" monitor --data-dir EMPTY plugins check FILE`: a cold
   compile; wall seconds and peak RSS (the larger of the command and its compile child);
3. `monitor --data-dir DATA run --plugins PLUGINS` from cold: the figure of the host's
   "monitor ready in X ms" log line (which includes compiling the plugin);
4. after --seconds (65) of ticks: VmRSS, RssAnon, RssFile and VmHWM from
   /proc/PID/status, and the plugin's stats from `monitor plugins list --json`;
5. SIGTERM, then --restarts (5) starts from the compile cache: the median ready figure.

`--baseline` adds the host alone first (the tables' "none" row). `--grant-dir
NAME=prom|log` gives a plugin that reads a directory (textfile-collector, log-patterns)
one: a one-line `.prom` file or a 100-line log, `directory = "..."` in NAME.toml, and
`fs-read` on it granted once the cold host is ready. Prints a Markdown table in the
shape of BENCHMARKS.md's, then every raw figure as JSON. Standard library only; every
process it starts is stopped (SIGTERM, then waited for) however it ends.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

READY = re.compile(r"monitor ready in ([0-9.]+) ms\b[^\n]*?loaded=(\d+) running=(\d+) problems=(\d+)")
READY_MS = re.compile(r"monitor ready in ([0-9.]+) ms")
LOADED = re.compile(r"plugin loaded from .* cached=(true|false)")
NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# What a granted directory holds, as bench.py gave textfile-collector and log-patterns.
GRANT_DIRS = {
    "prom": ("prom", "a.prom", 'queue_depth{queue="ingest"} 42\n'),
    "log": ("logs", "train.log", "step 1 loss 2.3\nTraceback (most recent call last):\n" * 50),
}
STATUS_FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")
STAT_FIELDS = ("calls", "faults", "errors", "p50_us", "p99_us", "memory_peak_bytes")


class Failure(Exception):
    """A measurement that cannot go on; the message says why."""


def say(*parts):
    print(*parts, file=sys.stderr, flush=True)


def environment():
    """This environment without MONITOR_* (no --url, token or data directory from the
    caller's shell), logging at info and without colour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(MONITOR_LOG="info", NO_COLOR="1")
    return env


def private_dir(path):
    os.makedirs(path)
    os.chmod(path, 0o700)
    return path


def kill_group(proc):
    """SIGKILL a process started in a session of its own, and its children, by its id."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class Host:
    """`monitor run` on one plugin and data directory; each start logs to a file of its own."""

    def __init__(self, args, root, plugins, data):
        self.args, self.root, self.plugins, self.data = args, root, plugins, data
        self.proc = None
        self.log_path = None

    def start(self, label):
        """Starts the host and waits for its ready line: (ready ms, the line's counts, cached flags)."""
        self.log_path = os.path.join(self.root, f"{label}.log")
        command = [self.args.monitor, "--data-dir", self.data, "run", "--plugins", self.plugins]
        if self.args.config:
            command += ["--config", self.args.config]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=environment(), start_new_session=True)
        deadline = time.monotonic() + self.args.ready_timeout
        while True:
            text = self.log()
            found = READY_MS.search(text)
            if found:
                counts = READY.search(text)
                counts = dict(zip(("loaded", "running", "problems"), map(int, counts.groups()[1:]))) if counts else {}
                cached = [c == "true" for c in LOADED.findall(text[:found.end()])]
                return float(found.group(1)), counts, cached
            if self.proc.poll() is not None:
                raise Failure(f"the host exited with status {self.proc.returncode} before it was ready:\n{text}")
            if time.monotonic() > deadline:
                raise Failure(f"no ready line within {self.args.ready_timeout} s:\n{text}")
            time.sleep(0.02)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM and wait; SIGKILL (the host and its children) if it is not gone in 30 s.
        Returns the exit status, None when nothing ran."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                raise Failure(f"the host (pid {proc.pid}) did not stop within 30 s of SIGTERM; killed")
        return proc.returncode


def cli(args, data, *words, timeout=60):
    """`monitor --data-dir DATA WORDS...`, which talks to the host running on DATA."""
    return subprocess.run([args.monitor, "--data-dir", data, *words], capture_output=True, text=True,
                          env=environment(), stdin=subprocess.DEVNULL, timeout=timeout)


def listing(args, data):
    out = cli(args, data, "plugins", "list", "--json")
    if out.returncode != 0:
        raise Failure(f"monitor plugins list --json failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def the_plugin(listed, name):
    """The plugin's entry: the only one (each plugin runs alone), or the one called NAME."""
    plugins = listed.get("plugins", [])
    if len(plugins) == 1:
        return plugins[0]
    for entry in plugins:
        if entry.get("name") == name:
            return entry
    raise Failure(f"{name} is not among the host's plugins: {json.dumps(listed)}")


def state_of(entry):
    state = entry.get("state")
    return state.get("state") if isinstance(state, dict) else state


def proc_status(pid):
    figures = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in STATUS_FIELDS:
                figures[key + "_kib"] = int(value.split()[0])
    return figures


def check(args, file, checkdata):
    """`plugins check` on an empty data directory, under /usr/bin/time: (wall s, peak KiB)."""
    command = ["/usr/bin/time", "-f", "%e %M", args.monitor, "--data-dir", checkdata, "plugins", "check", file]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environment(), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=args.ready_timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise Failure(f"plugins check {file} took more than {args.ready_timeout} s; killed")
    finally:
        if proc.poll() is None:
            kill_group(proc)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    if proc.returncode != 0 or not re.fullmatch(r"[0-9.]+ [0-9]+", last):
        raise Failure(f"plugins check {file} failed ({proc.returncode}):\n{out}{err}")
    wall, peak = last.split()
    return float(wall), int(peak)


def warnings(text):
    return [line for line in text.splitlines() if " WARN " in line or " ERROR " in line]


def measure(args, work, name, file, grant):
    """One row: the plugin NAME from FILE (None: the host alone), alone in its directories."""
    root = private_dir(os.path.join(work, name or "none"))
    plugins = private_dir(os.path.join(root, "plugins"))
    data = private_dir(os.path.join(root, "data"))
    row = {"plugin": name or "none"}
    directory = None
    if name:
        row["file"] = os.path.abspath(file)
        row["size_bytes"] = os.path.getsize(file)
        say(f"{name}: plugins check (cold compile)")
        row["check_s"], row["check_peak_kib"] = check(args, file, private_dir(os.path.join(root, "checkdata")))
        shutil.copyfile(file, os.path.join(plugins, f"{name}.wasm"))
        if grant:
            sub, filename, content = GRANT_DIRS[grant]
            directory = os.path.join(root, sub)
            os.makedirs(directory)
            with open(os.path.join(directory, filename), "w") as f:
                f.write(content)
            with open(os.path.join(plugins, f"{name}.toml"), "w") as f:
                f.write(f"directory = {json.dumps(directory)}\n")
            row["granted"] = f"fs-read:{directory}"
    host = Host(args, root, plugins, data)
    try:
        say(f"{name or 'none'}: cold run")
        row["cold_ready_ms"], row["cold_ready_counts"], row["cold_cached"] = host.start("cold")
        if name:
            plugin = the_plugin(listing(args, data), name)
            row["name"] = plugin.get("name")
            if grant:
                out = cli(args, data, "plugins", "enable", row["name"], "--grant", row["granted"])
                if out.returncode != 0:
                    raise Failure(f"granting {row['granted']} failed ({out.returncode}): {out.stdout}{out.stderr}")
        say(f"{name or 'none'}: {args.seconds} s of ticks")
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:  # the measured window; the host must live through it
            if not host.alive():
                raise Failure(f"the host exited during the window:\n{host.log()}")
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        row.update(proc_status(host.proc.pid))
        if name:
            listed = listing(args, data)
            plugin = the_plugin(listed, row["name"])
            stats = plugin.get("stats", {})
            row["state"] = state_of(plugin)
            row.update({k: stats.get(k) for k in STAT_FIELDS})
            row["problems"] = listed.get("problems", [])
        row["cold_exit"] = host.stop()
        row["cold_warnings"] = warnings(host.log())
        row["cached_ready_all_ms"], row["cached_flags"], row["cached_exits"], row["cached_warnings"] = [], [], [], []
        for i in range(1, args.restarts + 1):
            say(f"{name or 'none'}: restart {i} from the compile cache")
            ready, _, cached = host.start(f"cached{i}")
            row["cached_ready_all_ms"].append(ready)
            row["cached_flags"].append(cached)
            row["cached_exits"].append(host.stop())
            row["cached_warnings"] += warnings(host.log())
        if row["cached_ready_all_ms"]:
            row["cached_ready_ms"] = statistics.median(row["cached_ready_all_ms"])
    finally:
        host.stop()
    doubts = []
    if name and row.get("state") != "running":
        doubts.append(f"state {row.get('state')} after the window")
    if name and (row.get("faults") or row.get("errors")):
        doubts.append(f"{row.get('faults')} faults, {row.get('errors')} errors")
    if name and any(flags != [True] for flags in row["cached_flags"]):
        doubts.append(f"a restart did not load from the cache: {row['cached_flags']}")
    if any(e != 0 for e in [row["cold_exit"], *row["cached_exits"]]):
        doubts.append(f"exit statuses {row['cold_exit']} {row['cached_exits']}")
    if doubts:
        row["doubts"] = doubts
        say(f"{row['plugin']}: look at this row: {'; '.join(doubts)}")
    return row


def size(n):
    for unit, scale in (("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{n} B"


def seconds(s):
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s" if s < 100 else f"{s:.0f} s"


def millis(ms):
    if ms >= 1000:
        return seconds(ms / 1000)
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def micros(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.1f} ms"


def mib(kib):
    return f"{kib / 1024:.1f}"


def table(rows, window):
    head = ["plugin", "file", "compile, cold (`plugins check`)", "compile peak RSS", "host ready: cold / from cache",
            f"host RSS after {window:g} s (anonymous / file)", "call p50 / p99", "plugin memory peak"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cached = millis(r["cached_ready_ms"]) if "cached_ready_ms" in r else "–"
        ready = f"{millis(r['cold_ready_ms'])} / {cached}"
        rss = f"{mib(r['VmRSS_kib'])} MiB ({mib(r['RssAnon_kib'])} / {mib(r['RssFile_kib'])})"
        if r["plugin"] == "none":
            cells = ["none (the host alone)", "", "", "", ready, rss, "", ""]
        else:
            calls = f"{micros(r['p50_us'])} / {micros(r['p99_us'])}" if r.get("p50_us") is not None else ""
            peak = f"{r['memory_peak_bytes'] / 2**20:.1f} MiB" if r.get("memory_peak_bytes") is not None else ""
            cells = [f"`{r['plugin']}`", size(r["size_bytes"]), seconds(r["check_s"]),
                     f"{mib(r['check_peak_kib'])} MiB", ready, rss, calls, peak]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def parse(argv):
    p = argparse.ArgumentParser(
        description="Measure plugins in the real monitor host, each alone (BENCHMARKS.md's "
                    "\"Python plugins\" and \"JavaScript plugins\" tables).",
        epilog="Example: python3 tests/languages/measure.py --monitor target/release/monitor --baseline "
               "fx-empty=target/wasm/wasm32-wasip2/plugin/fx_empty.wasm "
               "--grant-dir textfile-collector=prom "
               "textfile-collector=target/wasm/wasm32-wasip2/plugin/textfile_collector.wasm")
    p.add_argument("--monitor", required=True, help="the monitor binary to measure (e.g. target/release/monitor)")
    p.add_argument("plugins", nargs="*", metavar="NAME=FILE",
                   help="a plugin to measure, copied in as NAME.wasm; the row is labelled NAME")
    p.add_argument("--baseline", action="store_true", help="first measure the host alone (the 'none' row)")
    p.add_argument("--grant-dir", action="append", default=[], metavar="NAME=KIND",
                   help="give plugin NAME a directory to read (KIND prom: one .prom file, as textfile-collector "
                        "had; KIND log: a 100-line log, as log-patterns had), configured as `directory` in "
                        "NAME.toml and granted fs-read once the cold host is ready")
    p.add_argument("--seconds", type=float, default=65, help="the window before reading RSS and stats (default 65)")
    p.add_argument("--restarts", type=int, default=5, help="starts from the compile cache (default 5; the median)")
    p.add_argument("--config", help="a host configuration (TOML) for `monitor run --config` (the tables used none)")
    p.add_argument("--ready-timeout", type=float, default=300,
                   help="seconds to wait for a ready line or a plugins check (default 300)")
    p.add_argument("--workdir", help="where to make the temporary directory (default: the system's)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data) and say where")
    p.add_argument("--json", metavar="FILE", help="also write the raw figures to FILE")
    args = p.parse_intermixed_args(argv)
    if not args.plugins and not args.baseline:
        p.error("nothing to measure: give NAME=FILE arguments and/or --baseline")
    args.monitor = os.path.abspath(shutil.which(args.monitor) or args.monitor)
    if not os.access(args.monitor, os.X_OK):
        p.error(f"--monitor {args.monitor} is not an executable")
    if not os.access("/usr/bin/time", os.X_OK):
        p.error("/usr/bin/time is needed (Debian: apt install time)")
    if args.config:
        args.config = os.path.abspath(args.config)
    pairs = []
    for item in args.plugins:
        name, sep, file = item.partition("=")
        if not sep or not NAME_OK.match(name) or name == "none":
            p.error(f"{item}: expected NAME=FILE with NAME of letters, digits, '.', '_', '-' (and not 'none')")
        if not os.path.isfile(file):
            p.error(f"{item}: no file {file}")
        if name in (n for n, _ in pairs):
            p.error(f"{name} is given twice")
        pairs.append((name, file))
    grants = {}
    for item in args.grant_dir:
        name, sep, kind = item.partition("=")
        if not sep or kind not in GRANT_DIRS or name not in (n for n, _ in pairs):
            p.error(f"--grant-dir {item}: expected NAME=prom or NAME=log, NAME one of the plugins given")
        grants[name] = kind
    return args, pairs, grants


def main(argv):
    args, pairs, grants = parse(argv)
    # A SIGTERM to this script unwinds like Ctrl-C, through every finally that stops a host.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="monitor-measure-", dir=args.workdir)
    version = subprocess.run([args.monitor, "--version"], capture_output=True, text=True, env=environment())
    meta = {"monitor": args.monitor, "version": version.stdout.strip(), "seconds": args.seconds,
            "restarts": args.restarts, "config": args.config, "cpus": os.cpu_count(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "loadavg_start": loadavg()}
    rows, keep = [], True  # kept (logs, data) unless every row was measured and --keep is not given
    try:
        if args.baseline:
            rows.append(measure(args, work, None, None, None))
        for name, file in pairs:
            rows.append(measure(args, work, name, file, grants.get(name)))
        keep = args.keep
    except Failure as e:
        say(f"measure.py: {e}")
        return 1
    finally:
        meta["loadavg_end"] = loadavg()
        if rows:
            result = {"meta": meta, "rows": rows}
            print(table(rows, args.seconds))
            print()
            print(json.dumps(result, indent=1, ensure_ascii=False))
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(result, f, indent=1, ensure_ascii=False)
        if keep:
            say(f"measure.py: logs and data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
