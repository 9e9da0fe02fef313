"""Report the progress of a Python pipeline to a `monitor` host.

    import monitor

    with monitor.run("train-42", plan=["load", "train", "eval"]) as run:
        with run.phase("load", total=10) as phase:
            for _ in range(10):
                phase.advance()
        for batch in monitor.track(loader, "train-42/train"):
            ...

Every call only records the update in this process; one background thread
sends them to the host, merging a node's consecutive progress reports. When
the host cannot be reached nothing is raised and nothing waits: the updates
are kept and sent once it answers. The one error raised is `ValueError`, for a
node id the host would refuse.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, TypeVar

from ._path import check_name, check_path
from ._reporter import ADVANCE, DONE, PERCENT, REPORTER, clip_message, data_dir

__all__ = ["Node", "Run", "Step", "data_dir", "flush", "phase", "run", "step", "track"]
__version__ = "0.1.0"

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class _ThisProcess:
    def __repr__(self) -> str:
        return "<this process>"


THIS_PROCESS: Any = _ThisProcess()
"""The default `pid`: the host follows the calling process and its children."""

_runs: Dict[str, "Run"] = {}  # the runs not yet ended, by path


def _owner(path: str) -> Optional["Run"]:
    """The nearest run not yet ended that `path` lies below."""
    if not _runs:
        return None
    segments = path.split("/")
    for depth in range(len(segments) - 1, 0, -1):
        found = _runs.get("/".join(segments[:depth]))
        if found is not None:
            return found
    return None


def _fields(message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None, **more: Any) -> Dict[str, Any]:
    fields = {key: value for key, value in more.items() if value is not None}
    if message is not None:
        fields["message"] = clip_message(str(message))
    if metadata is not None:
        fields["metadata"] = dict(metadata) if isinstance(metadata, dict) else metadata
    return fields


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Node:
    """One node of a run's tree, such as ``train-42/load``.

    Its methods only record the update; none of them waits for the host or
    raises because of it. As a context manager it finishes the node on a
    normal exit and fails it when an exception leaves the block (the exception
    goes on); an interrupt (KeyboardInterrupt, a cancelled task) cancels it.
    """

    __slots__ = ("path", "_r", "_run", "_ended", "_stopped")

    def __init__(self, path: str, run: Optional["Run"] = None) -> None:
        self.path = path
        self._r = REPORTER
        self._run = run
        self._ended = False
        self._stopped: Optional[str] = None

    def __repr__(self) -> str:
        return f"<monitor.{type(self).__name__} {self.path}>"

    # Progress reports: merged with the node's other waiting reports.

    def advance(self, units: float = 1) -> None:
        """Adds `units` to the node's done count."""
        r = self._r
        with r.lock:
            entry = r.open.get(self.path)
            if entry is not None and (entry.op is ADVANCE or entry.op is DONE):
                entry.value += units
            else:
                r._append(self.path, ADVANCE, units, None)

    def set(self, done: float, message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Sets the done count (it may go down: a reporter correcting itself)."""
        self._r.report(self.path, DONE, done, _fields(message, metadata))

    def percent(self, percent: float, message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Sets progress as a percentage, 0 to 100, for a node without a total."""
        self._r.report(self.path, PERCENT, percent, _fields(message, metadata))

    def message(self, text: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Sets the node's message (an empty one clears it); `metadata` keys merge into the node's."""
        self._r.report(self.path, ADVANCE, 0, _fields(text, metadata))

    # Other operations: sent in order, never merged.

    def start(
        self,
        total: Optional[float] = None,
        weight: Optional[float] = None,
        *,
        message: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        pid: Optional[int] = THIS_PROCESS,
        on_failure: Optional[str] = None,
        calculator: Optional[str] = None,
    ) -> "Node":
        """Starts (or re-runs) the node. `pid`: the process whose CPU, memory and I/O
        (with its children's) the host records on the node; None for none."""
        fields = _fields(message, metadata, total=total, weight=weight, on_failure=on_failure, calculator=calculator)
        pid = os.getpid() if pid is THIS_PROCESS else pid
        if pid is not None:
            fields["pid"] = pid
        self._r.put(self.path, "start", fields)
        self._ended = False
        self._stopped = None
        if self._run is not None:
            self._run._opened(self)
        return self

    def finish(self, message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        self._end("finish", message, metadata)

    def fail(self, message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        self._end("fail", message, metadata)

    def cancel(self, message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        self._end("cancel", message, metadata)

    def pause(self, message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        self._r.put(self.path, "pause", _fields(message, metadata))

    def resume(self, message: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        self._r.put(self.path, "resume", _fields(message, metadata))

    def _end(self, op: str, message: Optional[str], metadata: Optional[Dict[str, Any]]) -> None:
        self._r.put(self.path, op, _fields(message, metadata))
        self._ended = True
        if self._run is not None:
            self._run._closed(self)

    def _close(self, exc: Optional[BaseException]) -> None:
        """Ends the node as a `with` block ending with `exc` would."""
        if exc is None:
            self.finish(self._stopped)
        elif isinstance(exc, Exception):
            self.fail(_describe(exc))
        elif isinstance(exc, SystemExit):
            if exc.code in (None, 0):
                self.finish(self._stopped)
            else:
                self.fail(f"SystemExit: exit status {exc.code}")
        else:
            self.cancel(_describe(exc))

    # Children.

    def phase(
        self,
        name: str,
        total: Optional[float] = None,
        weight: Optional[float] = None,
        *,
        message: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        pid: Optional[int] = THIS_PROCESS,
    ) -> "Node":
        """The child `name`, started now; use it with `with` to finish it."""
        path = self._child(name)
        return _begin(path, self._children_run(), total, weight, message, metadata, pid)

    def step(
        self,
        name: str,
        total: Optional[float] = None,
        weight: Optional[float] = None,
        *,
        message: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        pid: Optional[int] = THIS_PROCESS,
    ) -> "Step":
        """The child `name`, started each time the step is entered: a decorator or a context manager."""
        path = self._child(name)
        return Step(path, self._children_run(), dict(total=total, weight=weight, message=message, metadata=metadata, pid=pid))

    def track(
        self,
        iterable: Iterable[T],
        name: str,
        total: Optional[float] = None,
        *,
        weight: Optional[float] = None,
        message: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        pid: Optional[int] = THIS_PROCESS,
    ) -> Iterator[T]:
        """`iterable`'s items, each one counted on the child `name` once the loop's body is done with it."""
        path = self._child(name)
        return _track(iterable, path, self._children_run(), total, weight, message, metadata, pid)

    def _child(self, name: str) -> str:
        return check_path(f"{self.path}/{check_name(name)}")

    def _children_run(self) -> Optional["Run"]:
        return self if isinstance(self, Run) else self._run

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, kind: Any, exc: Optional[BaseException], tb: Any) -> bool:
        if not self._ended:
            self._close(exc)
        return False


class Run(Node):
    """A node that owns what is started below it: when it ends, every node below
    it still open ends with it (finished, or failed if the run fails), and so do
    the planned phases never started (cancelled, or failed if the run fails)."""

    __slots__ = ("_open", "_planned")

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._open: Dict[str, Node] = {}
        self._planned: Dict[str, None] = {}

    def plan(self, phases: Sequence[str], weights: Optional[Sequence[float]] = None) -> None:
        """Declares the run's phases up front, pending until each starts."""
        names, weights = self._checked_plan(phases, weights)
        fields: Dict[str, Any] = {"phases": names}
        if weights is not None:
            fields["weights"] = weights
        self._r.put(self.path, "plan", fields)
        self._planned.update(dict.fromkeys(names))

    def _checked_plan(self, phases: Sequence[str], weights: Optional[Sequence[float]]) -> Any:
        if isinstance(phases, str):
            raise ValueError("plan is a list of phase names, such as ['load', 'train']")
        names = [check_name(p) for p in phases]
        for name in names:
            check_path(f"{self.path}/{name}")
        if weights is not None:
            weights = list(weights)
            if len(weights) != len(names):
                raise ValueError(f"{len(weights)} weights for {len(names)} phases; give one weight per phase")
        return names, weights

    def _opened(self, node: Node) -> None:
        self._open[node.path] = node

    def _closed(self, node: Node) -> None:
        self._open.pop(node.path, None)

    def _entering(self, node: Node) -> None:
        """Something new starts in the run: loops stopped early are finished, and a planned phase is no longer pending."""
        for other in list(self._open.values()):
            if other._stopped is not None and other is not node:
                other.finish(other._stopped)
        if node.path.rpartition("/")[0] == self.path:
            self._planned.pop(node.path.rpartition("/")[2], None)

    def _end(self, op: str, message: Optional[str], metadata: Optional[Dict[str, Any]]) -> None:
        for node in reversed(list(self._open.values())):
            if op == "finish":
                node.finish(node._stopped)
            elif op == "fail":
                node.fail(f"the run failed: {message}" if message else "the run failed")
            else:
                node.cancel(message)
        # Planned phases never started would keep the run open: they fail with a
        # failed run, and are cancelled otherwise.
        for name in list(self._planned):
            planned = Node(f"{self.path}/{name}")
            if op == "fail":
                planned.fail(f"not started: the run failed: {message}" if message else "not started: the run failed")
            else:
                planned.cancel("not started before the run ended")
        self._planned.clear()
        super()._end(op, message, metadata)
        if _runs.get(self.path) is self:
            del _runs[self.path]


class Step:
    """A node started each time the step is entered: ``with step as node:`` or
    ``@step`` on a function (finished when it returns, failed when it raises)."""

    __slots__ = ("path", "_run", "_start", "_nodes")

    def __init__(self, path: str, run: Optional[Run], start: Dict[str, Any]) -> None:
        self.path = path
        self._run = run
        self._start = start
        self._nodes: List[Node] = []

    def __repr__(self) -> str:
        return f"<monitor.Step {self.path}>"

    def _begin(self) -> Node:
        run = self._run if self._run is not None else _owner(self.path)
        s = self._start
        return _begin(self.path, run, s["total"], s["weight"], s["message"], s["metadata"], s["pid"])

    def __enter__(self) -> Node:
        node = self._begin()
        self._nodes.append(node)
        return node

    def __exit__(self, kind: Any, exc: Optional[BaseException], tb: Any) -> bool:
        self._nodes.pop().__exit__(kind, exc, tb)
        return False

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self._begin():
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def run_generator(*args: Any, **kwargs: Any) -> Any:
                with self._begin():
                    return (yield from fn(*args, **kwargs))

            return run_generator  # type: ignore[return-value]

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with self._begin():
                return fn(*args, **kwargs)

        return run_sync  # type: ignore[return-value]


def _begin(path: str, run: Optional[Run], total: Any, weight: Any, message: Any, metadata: Any, pid: Any) -> Node:
    node = Node(path, run)
    if run is not None:
        run._entering(node)
    return node.start(total, weight, message=message, metadata=metadata, pid=pid)


def run(
    name: str,
    *,
    plan: Optional[Sequence[str]] = None,
    weights: Optional[Sequence[float]] = None,
    total: Optional[float] = None,
    weight: Optional[float] = None,
    message: Optional[str] = None,
    metadata: Optional[Dict[str, Any]] = None,
    on_failure: Optional[str] = None,
    calculator: Optional[str] = None,
    pid: Optional[int] = THIS_PROCESS,
) -> Run:
    """Starts the run `name` (with the calling process's `pid`), and declares its
    `plan` of phases (`weights`: one per phase) if given. With `with`: finished
    on exit, failed when an exception leaves the block (the exception goes on).

    `on_failure="continue"` keeps the run going after a phase fails, until every
    phase has finished; `calculator` names a progress-calculator plugin."""
    check_path(name)
    node = Run(name)
    checked = node._checked_plan(plan, weights) if plan is not None else None
    if plan is None and weights is not None:
        raise ValueError("weights are given with a plan: one weight per planned phase")
    node.start(
        total, weight, message=message, metadata=metadata, pid=pid, on_failure=on_failure, calculator=calculator
    )
    if checked is not None:
        node.plan(*checked)
    _runs[name] = node
    return node


def phase(
    path: str,
    total: Optional[float] = None,
    weight: Optional[float] = None,
    *,
    message: Optional[str] = None,
    metadata: Optional[Dict[str, Any]] = None,
    pid: Optional[int] = THIS_PROCESS,
) -> Node:
    """The node `path` (like ``train-42/load``), started now; with `with`, finished
    on exit and failed by an exception. Below a run of this process, it ends with
    that run if still open."""
    check_path(path)
    return _begin(path, _owner(path), total, weight, message, metadata, pid)


def step(
    path: str,
    total: Optional[float] = None,
    weight: Optional[float] = None,
    *,
    message: Optional[str] = None,
    metadata: Optional[Dict[str, Any]] = None,
    pid: Optional[int] = THIS_PROCESS,
) -> Step:
    """The node `path`, started each time the step is entered: a decorator or a context manager."""
    check_path(path)
    return Step(path, None, dict(total=total, weight=weight, message=message, metadata=metadata, pid=pid))


def track(
    iterable: Iterable[T],
    path: str,
    total: Optional[float] = None,
    *,
    weight: Optional[float] = None,
    message: Optional[str] = None,
    metadata: Optional[Dict[str, Any]] = None,
    pid: Optional[int] = THIS_PROCESS,
) -> Iterator[T]:
    """`iterable`'s items, like tqdm: the node `path` starts now with `total` (by
    default ``len(iterable)`` when it has one), counts each item once the loop's
    body is done with it, and finishes when the iterable is exhausted (fails if
    it raises). A loop left early is finished, with a message saying where it
    stopped; below a run of this process that waits until the run moves on to
    another node or ends, so an exception that ends the run fails it instead."""
    check_path(path)
    return _track(iterable, path, _owner(path), total, weight, message, metadata, pid)


def _track(
    iterable: Iterable[T], path: str, run: Optional[Run], total: Any, weight: Any, message: Any, metadata: Any, pid: Any
) -> Iterator[T]:
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except Exception:
            total = None
    node = _begin(path, run, total, weight, message, metadata, pid)
    return _tracking(iterable, node, total)


def _tracking(iterable: Iterable[T], node: Node, total: Any) -> Iterator[T]:
    count = 0
    try:
        for item in iterable:
            yield item
            node.advance()
            count += 1
    except GeneratorExit:
        stopped = f"stopped after {count} of {total}" if total is not None else f"stopped after {count}"
        if node._run is None:
            node.finish(stopped)
        else:
            node._stopped = stopped
        raise
    except BaseException as e:
        node._close(e)
        raise
    node.finish()


def flush(timeout: Optional[float] = None) -> bool:
    """Waits until every update recorded so far is delivered (or refused by the
    host); True if so, False if `timeout` seconds passed first (None: no limit).
    At the interpreter's exit this runs by itself for up to 2 seconds."""
    return REPORTER.flush(timeout)
