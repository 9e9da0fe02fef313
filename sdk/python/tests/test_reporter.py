"""The reporter against a real host: `python3 -m unittest discover -s tests -t .` in sdk/python.

Every test reads back what the host stored (`GET /v1/runs/RUN`, `.../events`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List

import monitor
from monitor import _reporter

from .host import Host, wait_for

HOST: Host
DELIVERY = 20.0  # seconds a flush may take in these tests


def setUpModule() -> None:
    global HOST
    HOST = Host().start()
    use(HOST.data)


def tearDownModule() -> None:
    HOST.close()


def use(data: Path) -> None:
    """Points the reporter at the host of `data`."""
    os.environ.pop("MONITOR_URL", None)
    os.environ.pop("MONITOR_TOKEN", None)
    os.environ["MONITOR_DATA_DIR"] = str(data)
    _reporter.REPORTER.rediscover()


def impostor(port: int = 0) -> Any:
    """Something else on a host's address: answers every request 200 without the proof; the
    Authorization header of each request it gets."""
    seen: List[str] = []

    class Impostor(BaseHTTPRequestHandler):
        def answer(self) -> None:
            seen.append(self.headers.get("Authorization") or "")
            body = json.dumps({"ok": True, "pid": 1, "version": "0", "proof": "0" * 64}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Impostor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class ReporterTest(unittest.TestCase):
    def setUp(self) -> None:
        self.logs = Captured()
        logging.getLogger("monitor").addHandler(self.logs)

    def tearDown(self) -> None:
        logging.getLogger("monitor").removeHandler(self.logs)

    def logged(self, text: str) -> List[str]:
        return [m for m in self.logs.messages if text in m]

    def flush(self) -> None:
        self.assertTrue(monitor.flush(DELIVERY), f"updates not delivered within {DELIVERY} s; log: {self.logs.messages}")

    def events(self, run: str, path: str, op: str, host: Host = None) -> List[Dict[str, Any]]:
        return [e for e in (host or HOST).events(run) if e["path"] == path and e["update"]["op"] == op]

    # The shape.

    def test_happy_path_counts_land_exactly_in_few_updates(self) -> None:
        with monitor.run("happy-1") as run:
            with run.phase("load", total=10) as phase:
                for _ in range(10):
                    phase.advance()
                phase.message("loaded")
            with run.phase("train") as train:
                for _ in range(100_000):
                    train.advance()
                train.advance(0.5)
            with run.phase("eval") as evaluate:
                evaluate.percent(40, message="half")
                evaluate.set(7)
        self.flush()
        tree = HOST.tree("happy-1")
        self.assertEqual(tree["happy-1"]["status"], "completed")
        self.assertEqual((tree["happy-1/load"]["status"], tree["happy-1/load"]["done"]), ("completed", 10))
        self.assertEqual(tree["happy-1/load"]["message"], "loaded")
        self.assertEqual(sum(e["update"]["units"] for e in self.events("happy-1", "happy-1/load", "advance")), 10)
        self.assertEqual((tree["happy-1/train"]["status"], tree["happy-1/train"]["done"]), ("completed", 100_000.5))
        advances = self.events("happy-1", "happy-1/train", "advance")
        self.assertLessEqual(len(advances), 20, "a tight loop's advances are sent as few updates")
        self.assertEqual((tree["happy-1/eval"]["done"], tree["happy-1/eval"]["message"]), (7, "half"))
        ops = [e["update"]["op"] for e in HOST.events("happy-1") if e["path"] == "happy-1/load"]
        self.assertEqual((ops[0], ops[-1]), ("start", "finish"), "start before advance before finish")
        self.assertEqual(self.logged("refused"), [])

    def test_advances_from_many_threads_add_up(self) -> None:
        node = monitor.phase("threads-1/work")

        def work() -> None:
            for _ in range(50_000):
                node.advance()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        node.finish()
        self.flush()
        self.assertEqual(HOST.tree("threads-1")["threads-1/work"]["done"], 200_000)

    def test_an_exception_fails_the_node_and_goes_on(self) -> None:
        with self.assertRaisesRegex(RuntimeError, "boom"):
            with monitor.run("boom-1") as run:
                with run.phase("a", total=5) as phase:
                    phase.advance(2)
                    raise RuntimeError("boom")
        with self.assertRaises(KeyError):
            with monitor.run("boom-2") as run:
                left_open = run.phase("b")
                left_open.advance(1)
                raise KeyError("k")
        self.flush()
        tree = HOST.tree("boom-1")
        self.assertEqual(tree["boom-1/a"]["status"], "failed")
        self.assertEqual(tree["boom-1/a"]["message"], "RuntimeError: boom")
        self.assertEqual(tree["boom-1/a"]["done"], 2)
        self.assertEqual(tree["boom-1"]["status"], "failed")
        tree = HOST.tree("boom-2")
        self.assertEqual(tree["boom-2/b"]["status"], "failed", "a node left open fails with its run")
        self.assertEqual(tree["boom-2"]["status"], "failed")

    def test_track_a_list_and_a_generator(self) -> None:
        items = list(range(25))
        self.assertEqual(list(monitor.track(items, "track-1/list")), items)

        def numbers(n: int) -> Any:
            yield from range(n)

        self.assertEqual(sum(1 for _ in monitor.track(numbers(37), "track-1/generator")), 37)
        self.assertEqual(sum(1 for _ in monitor.track(numbers(8), "track-1/told", total=8)), 8)
        self.flush()
        tree = HOST.tree("track-1")
        listed, generated, told = tree["track-1/list"], tree["track-1/generator"], tree["track-1/told"]
        self.assertEqual((listed["status"], listed["done"], listed["total"]), ("completed", 25, 25))
        self.assertEqual((generated["status"], generated["done"], generated["total"]), ("completed", 37, None))
        self.assertEqual((told["status"], told["done"], told["total"]), ("completed", 8, 8))

    def test_track_left_early_and_failing(self) -> None:
        def numbers() -> Any:
            yield from range(100)

        with monitor.run("track-2") as run:
            for i in monitor.track(numbers(), "track-2/loop"):
                if i == 5:
                    break
            with run.phase("next"):
                pass
        with self.assertRaises(ZeroDivisionError):
            with monitor.run("track-3") as run:
                for i in run.track(range(10), "loop"):
                    if i == 3:
                        raise ZeroDivisionError("no")

        def broken() -> Any:
            yield 1
            raise OSError("disk gone")

        with self.assertRaises(OSError):
            for _ in monitor.track(broken(), "track-4/loop"):
                pass
        self.flush()
        loop = HOST.tree("track-2")["track-2/loop"]
        self.assertEqual((loop["status"], loop["done"], loop["message"]), ("completed", 5, "stopped after 5"))
        self.assertEqual(HOST.tree("track-2")["track-2"]["status"], "completed")
        tree = HOST.tree("track-3")
        self.assertEqual((tree["track-3/loop"]["status"], tree["track-3/loop"]["done"]), ("failed", 3))
        self.assertEqual(tree["track-3"]["status"], "failed")
        loop = HOST.tree("track-4")["track-4/loop"]
        self.assertEqual((loop["status"], loop["done"], loop["message"]), ("failed", 1, "OSError: disk gone"))

    def test_steps_decorate_functions_and_nest(self) -> None:
        with monitor.run("deco-1") as run:

            @run.step("eval")
            def evaluate(x: int) -> int:
                return x * 2

            self.assertEqual(evaluate(21), 42)
            with run.phase("outer") as outer:
                with outer.step("inner", total=3) as inner:
                    inner.advance(3)

        @monitor.step("deco-3/pairs")
        def pairs(n: int) -> Any:
            for i in range(n):
                yield i, i

        @monitor.step("deco-3/later")
        async def later() -> str:
            await asyncio.sleep(0)
            return "done"

        self.assertEqual(len(list(pairs(3))), 3)
        self.assertEqual(asyncio.run(later()), "done")

        @monitor.step("deco-2/bad")
        def bad() -> None:
            raise KeyError("k")

        with self.assertRaises(KeyError):
            bad()
        self.flush()
        tree = HOST.tree("deco-1")
        self.assertEqual(tree["deco-1/eval"]["status"], "completed")
        self.assertEqual((tree["deco-1/outer/inner"]["status"], tree["deco-1/outer/inner"]["done"]), ("completed", 3))
        self.assertEqual(tree["deco-1"]["status"], "completed")
        self.assertEqual(HOST.tree("deco-2")["deco-2/bad"]["status"], "failed")
        self.assertEqual(HOST.tree("deco-2")["deco-2/bad"]["message"], "KeyError: 'k'")
        tree = HOST.tree("deco-3")
        self.assertEqual((tree["deco-3/pairs"]["status"], tree["deco-3/later"]["status"]), ("completed", "completed"))

    def test_a_phase_without_a_run(self) -> None:
        with monitor.phase("free-1/a", total=4) as a:
            a.set(3)
            a.set(2)  # a reporter correcting itself
        b = monitor.phase("free-1/b")
        b.percent(30)
        self.flush()
        tree = HOST.tree("free-1")
        self.assertEqual(tree["free-1/a"]["status"], "completed")
        self.assertEqual([e["update"]["units"] for e in self.events("free-1", "free-1/a", "done")][-1], 2)
        self.assertAlmostEqual(tree["free-1/b"]["progress"], 0.3)
        self.assertEqual(tree["free-1/b"]["status"], "running")
        b.finish()
        self.flush()

    # Errors.

    def test_bad_names_raise_value_error_at_once(self) -> None:
        bad = ["", "/a", "a/", "a//b", "a/b c", "-x", "run/.hidden", "a/..", "é", "w" * 65, "/".join("s" * 17), "a/" + "b" * 255]
        queued = _reporter.REPORTER.seq
        for path in bad:
            for call in (monitor.run, monitor.phase, monitor.step, lambda p: monitor.track([], p)):
                with self.assertRaises(ValueError, msg=f"{path!r}"):
                    call(path)
        run = monitor.run("names-1")
        for name in ["a/b", "b c", "..", ""]:
            with self.assertRaises(ValueError, msg=name):
                run.phase(name)
            with self.assertRaises(ValueError, msg=name):
                run.step(name)
        with self.assertRaises(ValueError):
            monitor.run("names-2", plan=["ok", "not ok"])
        with self.assertRaises(ValueError):
            monitor.run("names-3", plan=["a", "b"], weights=[1])
        self.assertEqual(_reporter.REPORTER.seq, queued + 1, "nothing but names-1's start was queued")
        monitor.phase("_a/0/A.b-c").finish()
        run.finish()
        self.flush()
        self.assertEqual(HOST.tree("_a")["_a/0/A.b-c"]["status"], "completed")

    def test_a_refused_update_is_logged_once_and_later_ones_go_on(self) -> None:
        with monitor.run("refuse-1") as run:
            with run.phase("a", total=10) as phase:
                phase.percent(150)
                self.flush()
                phase.percent(150)
                phase.advance(4)
                phase.message("still here")
        self.flush()
        self.assertEqual(len(self.logged("percent of 150")), 1, self.logs.messages)
        tree = HOST.tree("refuse-1")
        self.assertEqual((tree["refuse-1/a"]["status"], tree["refuse-1/a"]["message"]), ("completed", "still here"))
        self.assertEqual(sum(e["update"]["units"] for e in self.events("refuse-1", "refuse-1/a", "advance")), 4)
        self.assertEqual(tree["refuse-1"]["status"], "completed")

    def test_unsendable_values_are_refused_alone(self) -> None:
        with monitor.phase("odd-1/a") as a:
            a.advance(float("nan"))
        with monitor.phase("odd-1/c") as c:
            c.message("with metadata", metadata={"when": object()})
        with monitor.phase("odd-1/b") as b:
            b.advance(2)
        self.flush()
        self.assertEqual(len(self.logged("cannot be sent as JSON")), 2, self.logs.messages)
        self.assertEqual(HOST.tree("odd-1")["odd-1/b"]["done"], 2)

    # The host away.

    def test_a_host_down_at_start_gets_everything_once_it_is_up(self) -> None:
        late = Host()
        try:
            use(late.data)
            began = time.monotonic()
            with monitor.run("late-1") as run:
                with run.phase("a", total=50) as phase:
                    for _ in range(50):
                        phase.advance()
                with run.phase("b") as b:
                    b.advance(7)
            self.assertLess(time.monotonic() - began, 0.5, "the pipeline never waits for the host")
            wait_for("the outage to be logged", 10, lambda: self.logged("progress is kept") or None)
            self.assertFalse(monitor.flush(0.3))
            late.start()
            self.flush()
            tree = late.tree("late-1")
            self.assertEqual(tree["late-1"]["status"], "completed")
            self.assertEqual((tree["late-1/a"]["status"], tree["late-1/a"]["done"]), ("completed", 50))
            self.assertEqual(tree["late-1/b"]["done"], 7)
            self.assertEqual(len(self.logged("progress is kept")), 1, self.logs.messages)
            self.assertIn("no host is running", self.logged("progress is kept")[0])
            self.assertEqual(len(self.logged("delivered again")), 1, self.logs.messages)
        finally:
            use(HOST.data)
            late.close()

    def test_a_host_restarted_mid_run_loses_nothing(self) -> None:
        host = Host().start()
        squatter = None
        try:
            use(host.data)
            with monitor.run("restart-1") as run:
                a = run.phase("a")
                for _ in range(1000):
                    a.advance()
                self.flush()
                old_addr, old_token = host.addr, host.token
                host.stop(signal.SIGKILL)  # as a crash: daemon.json stays behind
                for _ in range(500):
                    a.advance()
                with run.phase("b", total=3) as b:
                    b.advance(3)
                a.message("after the crash")
                wait_for("the outage to be logged", 10, lambda: self.logged("progress is kept") or None)
                # The new host has a new token, and a new port: another program took the old one.
                (host.data / "api-token").unlink()
                squatter, seen = impostor(int(old_addr.rpartition(":")[2]))
                host.start()
                self.assertNotEqual((host.addr, host.token), (old_addr, old_token))
                a.advance(250)
                a.finish()
            self.flush()
            tree = host.tree("restart-1")
            self.assertEqual((tree["restart-1/a"]["status"], tree["restart-1/a"]["done"]), ("completed", 1750))
            self.assertEqual(tree["restart-1/a"]["message"], "after the crash")
            self.assertEqual((tree["restart-1/b"]["status"], tree["restart-1/b"]["done"]), ("completed", 3))
            self.assertEqual(tree["restart-1"]["status"], "completed")
            self.assertEqual(len(self.logged("progress is kept")), 1, self.logs.messages)
            self.assertEqual(len(self.logged("delivered again")), 1, self.logs.messages)
            self.assertEqual([h for h in seen if h], [], "the program on the old port was not sent the token")
        finally:
            if squatter is not None:
                squatter.shutdown()
                squatter.server_close()
            use(HOST.data)
            host.close()

    def test_the_token_goes_only_to_a_host_that_proves_it_holds_it(self) -> None:
        server, seen = impostor()
        data = Path(tempfile.mkdtemp(prefix="monitor-py-impostor-"))
        try:
            (data / "daemon.json").write_text(json.dumps({"pid": 1, "addr": f"127.0.0.1:{server.server_address[1]}"}))
            (data / "api-token").write_text("t" * 64)
            use(data)
            monitor.phase("impostor-1/a").finish()
            wait_for("the refusal to be logged", 10, lambda: self.logged("it is not sent the token") or None)
            self.assertTrue(seen, "the impostor was asked to prove itself")
            self.assertEqual([h for h in seen if h], [], "no request carried the token")
        finally:
            server.shutdown()
            server.server_close()
            use(HOST.data)
            for name in ("daemon.json", "api-token"):
                (data / name).unlink(missing_ok=True)
            data.rmdir()
        self.flush()  # what was queued meanwhile reaches the real host
        self.assertEqual(HOST.tree("impostor-1")["impostor-1/a"]["status"], "completed")

    def test_a_host_over_tls_is_reached_and_its_certificate_checked(self) -> None:
        secure = Host(config="[api]\ntls = true\n").start()
        try:
            use(secure.data)  # daemon.json names the certificate to trust
            monitor.phase("tls-1/a").finish()
            self.flush()
            # From elsewhere: MONITOR_URL over https, checked against MONITOR_CA; without
            # it the system's roots refuse the host's own certificate and nothing is sent.
            os.environ["MONITOR_DATA_DIR"] = "/nonexistent/monitor"
            os.environ["MONITOR_URL"] = secure.url
            os.environ["MONITOR_TOKEN"] = secure.token
            os.environ.pop("MONITOR_CA", None)
            _reporter.REPORTER.rediscover()
            monitor.phase("tls-1/b").finish()
            wait_for("the refusal to be logged", 10, lambda: self.logged("CERTIFICATE_VERIFY_FAILED") or None)
            self.assertFalse(monitor.flush(0.3))
            os.environ["MONITOR_CA"] = str(secure.data / "tls-ca.pem")
            _reporter.REPORTER.rediscover()
            self.flush()
            tree = secure.tree("tls-1")
            self.assertEqual((tree["tls-1/a"]["status"], tree["tls-1/b"]["status"]), ("completed", "completed"))
        finally:
            os.environ.pop("MONITOR_CA", None)
            use(HOST.data)
            secure.close()

    def test_monitor_url_and_token_from_the_environment(self) -> None:
        try:
            os.environ["MONITOR_DATA_DIR"] = "/nonexistent/monitor"
            os.environ["MONITOR_URL"] = f"http://{HOST.addr}"
            os.environ["MONITOR_TOKEN"] = HOST.token
            _reporter.REPORTER.rediscover()
            monitor.phase("env-1/a").finish()
            self.flush()
        finally:
            use(HOST.data)
        self.assertEqual(HOST.tree("env-1")["env-1/a"]["status"], "completed")
        start = self.events("env-1", "env-1/a", "start")[0]
        self.assertNotIn("pid", start["update"], "no pid for a host this user's data directory does not name")

    def test_a_full_queue_drops_old_progress_reports_but_keeps_starts_and_finishes(self) -> None:
        away = Host()
        limit = _reporter.MAX_QUEUE
        try:
            use(away.data)
            _reporter.MAX_QUEUE = 100
            _reporter.REPORTER.limit = 100
            for i in range(30):
                node = monitor.phase(f"full-1/n{i}")
                node.finish()
            for i in range(200):
                monitor.Node(f"full-1/p{i}").advance(1)
            self.assertLessEqual(len(_reporter.REPORTER.queue) + len(_reporter.REPORTER.in_flight), 110)
            wait_for("the drop to be logged", 10, lambda: self.logged("oldest progress reports are dropped") or None)
        finally:
            _reporter.MAX_QUEUE = limit
            _reporter.REPORTER.limit = limit
            use(HOST.data)
            away.close()
        self.flush()
        tree = HOST.tree("full-1")
        self.assertTrue(all(tree[f"full-1/n{i}"]["status"] == "completed" for i in range(30)))
        self.assertIn("full-1/p199", tree, "the newest reports are kept")
        self.assertNotIn("full-1/p0", tree, "the oldest reports went")
        self.assertEqual(len(self.logged("oldest progress reports are dropped")), 1, self.logs.messages)

    # Processes.

    def test_a_forked_child_reports_with_its_own_reporter(self) -> None:
        with monitor.run("fork-1") as run:
            a = run.phase("a")
            a.advance(10)
            self.flush()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # forking with the sender thread running is the point
                child = os.fork()
            if child == 0:
                try:
                    a.advance(5)
                    os._exit(0 if monitor.flush(DELIVERY) else 1)
                except BaseException:
                    os._exit(2)
            _, status = os.waitpid(child, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            a.advance(1)
        self.flush()
        self.assertEqual(HOST.tree("fork-1")["fork-1/a"]["done"], 16)

    def test_exit_delivers_what_is_queued_and_does_not_wait_for_a_host_that_is_down(self) -> None:
        script = "import monitor\nwith monitor.phase('exit-1/a', total=3) as a:\n    a.advance(3)\n"
        env = {**os.environ, "PYTHONPATH": str(Path(monitor.__file__).parents[1])}
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
        self.assertEqual(HOST.tree("exit-1")["exit-1/a"]["status"], "completed", "delivered at exit, without flush()")
        env["MONITOR_DATA_DIR"] = tempfile.mkdtemp(prefix="monitor-py-nohost-")
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-c", script], env=env, timeout=30, capture_output=True, text=True)
        os.rmdir(env["MONITOR_DATA_DIR"])
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertLess(time.monotonic() - began, 1.5, "the exit does not wait for a host that is down")
        self.assertEqual(done.stderr.count("progress is kept"), 1, done.stderr)

    # What the host is being taught now.

    def test_start_carries_the_pid(self) -> None:
        with monitor.run("pid-1") as run:
            with run.phase("a"):
                pass
        self.flush()
        starts = [e for e in HOST.events("pid-1") if e["update"]["op"] == "start"]
        self.assertEqual(len(starts), 2)
        for event in starts:
            self.assertEqual(event["update"].get("pid"), os.getpid(), event)
        tree = HOST.tree("pid-1")
        self.assertEqual((tree["pid-1"]["pid"], tree["pid-1/a"]["pid"]), (os.getpid(), os.getpid()))
        self.assertEqual(self.logged("does not take 'pid'"), [])

    def test_a_plan_declares_pending_phases_and_keeps_the_run_open(self) -> None:
        with monitor.run("plan-1", plan=["init", "setup", "build"], weights=[1, 1, 3]) as run:
            self.flush()
            tree = HOST.tree("plan-1")
            self.assertEqual(
                [(tree[f"plan-1/{p}"]["status"], tree[f"plan-1/{p}"]["weight"]) for p in ("init", "setup", "build")],
                [("pending", 1), ("pending", 1), ("pending", 3)],
            )
            with run.phase("init"):
                pass
            self.flush()
            self.assertEqual(HOST.tree("plan-1")["plan-1"]["status"], "running", "the run stays open between phases")
            with run.phase("setup"):
                pass
            with run.phase("build"):
                pass
        self.flush()
        tree = HOST.tree("plan-1")
        self.assertEqual(tree["plan-1"]["status"], "completed")
        with self.assertRaises(ValueError):
            with monitor.run("plan-2", plan=["a", "b"]) as run:
                with run.phase("a"):
                    pass
                raise ValueError("between phases")
        with monitor.run("plan-3", plan=["a", "b"]) as run:
            with run.phase("a"):
                pass
        self.flush()
        tree = HOST.tree("plan-2")
        self.assertEqual((tree["plan-2"]["status"], tree["plan-2/b"]["status"]), ("failed", "failed"))
        tree = HOST.tree("plan-3")
        self.assertEqual(tree["plan-3/b"]["status"], "cancelled", "a phase never started does not keep the run open")
        self.assertEqual(tree["plan-3"]["status"], "cancelled")
        self.assertEqual(self.logged("refused"), [])


if __name__ == "__main__":
    unittest.main()
