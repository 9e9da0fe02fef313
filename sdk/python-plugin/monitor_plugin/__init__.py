"""Write `monitor` plugins in Python: what `monitor-sdk` gives a Rust plugin.

A plugin is one Python module built into a WebAssembly component with
componentize-py, against the WIT package in the repository's `wit/`::

    componentize-py -d /path/to/monitor/wit -w metric-provider componentize app \\
        -p . -p /path/to/monitor/sdk/python-plugin -o process-count.wasm

The module defines a class with one role (the base class names the world to
build with ``-w``) and exports it in one line::

    from monitor_plugin import Metric, MetricProvider, export, metric, snapshot

    class ProcessCount(MetricProvider):
        NAME = "process-count"
        VERSION = "0.1.0"
        SUMMARY = "how many processes run"

        def collect(self) -> list[Metric]:
            return [metric("processes", snapshot().process_count)]

    Plugin, Metrics = export(ProcessCount)

| role | base class | world (``-w``) | ``export`` returns |
| --- | --- | --- | --- |
| metrics every sampling tick | `MetricProvider` (``collect``) | ``metric-provider`` | ``Plugin, Metrics`` |
| a parent's progress | `ProgressCalculator` (``compute``) | ``progress-calculator`` | ``Plugin, Progress`` |
| deliver alert transitions | `AlertHandler` (``handle``) | ``alert-handler`` | ``Plugin, AlertEvents`` |
| render a view as text | `DisplayFormatter` (``format``) | ``display-formatter`` | ``Plugin, Formatter`` |

A class with several roles inherits several base classes; `export` returns
``Plugin`` and then the role classes in the order of the table. It is built
against a world of your own that includes each role's (componentize-py 0.25.1
fails on ``-w metric-provider -w display-formatter``), with the contract as a
dependency (``wit/deps/monitor/`` holding the repository's ``wit/*.wit``)::

    // wit/both.wit; build with -d wit -w both
    package local:both;

    world both {
        include monitor:plugin/metric-provider@0.1.1;   // the version wit/ declares
        include monitor:plugin/display-formatter@0.1.1;
    }

`export` checks the class when the component is built (componentize-py imports
the module then), so a bad name, a capability the host does not know, or
bindings for another world stop the build with one line.

What to know about Python in the sandbox:

- **Import at the top of the module.** componentize-py keeps what the module
  imported when it was built; a module imported inside a function at run time is
  not there (``ModuleNotFoundError``).
- **Errors and faults.** Raise `Error` (or let `parse_config` raise it) for a
  result the contract allows to fail: the host counts an *error* and shows its
  message. Any other exception is a *fault*, like a panic in Rust: the traceback
  goes to the host log, the instance is replaced, and ``quarantine_after`` faults
  in a row quarantine the plugin.
- Files: only directories granted (``fs-read:DIR``, ``fs-write:DIR``) exist, at
  the path granted; anything else is "No such file or directory".
- Time (``time.time()``, ``time.monotonic()``) works; every call still has the
  host's deadline (100 ms by default).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import re
import tomllib
import traceback
import types as _pytypes
import typing
from typing import Any, Callable, ClassVar, Mapping, Sequence, TypeVar

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import host as _host
from wit_world.imports import kv as _kv
from wit_world.imports.types import (
    Alert,
    AlertEvent,
    AlertState,
    BlockDevice,
    CapabilityRequest,
    Label,
    Level,
    Metric,
    Mount,
    NetworkInterface,
    NodeStatus,
    PluginInfo,
    Process,
    ProgressEstimate,
    ProgressNode,
    SystemSnapshot,
)

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertHandler",
    "AlertState",
    "BlockDevice",
    "CapabilityRequest",
    "DisplayFormatter",
    "Error",
    "Label",
    "Level",
    "Metric",
    "MetricProvider",
    "Mount",
    "NetworkInterface",
    "NodeStatus",
    "PluginBase",
    "Process",
    "ProgressCalculator",
    "ProgressEstimate",
    "ProgressNode",
    "SystemSnapshot",
    "block_devices",
    "capability",
    "export",
    "host_metrics",
    "kv",
    "log",
    "metric",
    "mounts",
    "network_interfaces",
    "parse_config",
    "runs",
    "snapshot",
    "top_processes",
]

# The kinds the host knows; it checks again when it loads the plugin.
CAPABILITIES = ("kv", "fs-read", "fs-write", "http")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class Error(Exception):
    """A failure the contract allows: the host counts an error and shows the message.

    Raise it from ``configure`` (the host does not run the plugin, and says why) or
    from a role's function (that one call failed; the next one is made as usual).
    """


# ---------------------------------------------------------------------------
# Values


def metric(name: str, value: float, unit: str = "", labels: Mapping[str, str] | None = None) -> Metric:
    """One sample: ``metric("queue_depth", 3, labels={"queue": "ingest"})``.

    ``unit`` is ``bytes``, ``seconds``, ``percent`` ... or empty. The host adds a
    ``plugin`` label. A name or label key the host would refuse raises `ValueError`.
    """
    if name not in _checked:
        if not _METRIC_NAME.match(name):
            raise ValueError(f"metric name {name!r}: use letters, digits, '_' and ':', not starting with a digit")
        _remember(name)
    pairs = []
    if labels:
        for key, text in labels.items():
            if key not in _checked:
                if not _LABEL_NAME.match(key):
                    raise ValueError(f"metric {name}: label key {key!r}: use letters, digits and '_'")
                _remember(key)
            pairs.append(Label(key=key, value=str(text)))
    return Metric(name=name, value=float(value), unit=unit, labels=pairs)


# Names and label keys found good: a plugin reports the same ones every tick.
_checked: set[str] = set()


def _remember(name: str) -> None:
    if len(_checked) >= 10_000:
        _checked.clear()
    _checked.add(name)


def capability(name: str, reason: str) -> CapabilityRequest:
    """A capability to ask for: ``kv``, ``fs-read``, ``fs-write`` or ``http``, with the
    reason shown to whoever grants it. The directory (or origin) is the granter's
    choice: ``monitor plugins enable NAME --grant fs-read:/srv/logs``."""
    if name not in CAPABILITIES:
        raise ValueError(f"capability {name!r}: known capabilities are {', '.join(CAPABILITIES)}")
    if not reason.strip():
        raise ValueError(f"capability {name!r}: give a reason; it is shown to whoever grants it")
    return CapabilityRequest(name=name, reason=reason)


def snapshot() -> SystemSnapshot:
    """The machine as of the host's last sampling tick."""
    return _host.snapshot()


def mounts() -> list[Mount]:
    """Each mounted filesystem's space, as ``df`` counts it (contract 0.1.1)."""
    return _host.mounts()


def block_devices() -> list[BlockDevice]:
    """Each block device's read and write rates (contract 0.1.1)."""
    return _host.block_devices()


def network_interfaces() -> list[NetworkInterface]:
    """Each network interface's traffic and errors per second (contract 0.1.1)."""
    return _host.network_interfaces()


def top_processes(limit: int = 10) -> list[Process]:
    """The ``limit`` busiest processes by CPU, busiest first; the host gives at
    most 100 (contract 0.1.1)."""
    if limit < 0:
        raise ValueError(f"top_processes(limit={limit}): give a count of 0 or more")
    return _host.top_processes(min(limit, 2**32 - 1))


def host_metrics() -> list[Metric]:
    """The host's own series as of its last sampling tick, named as ``/metrics``
    names them (``monitor_tick_duration_p99_seconds``, ``monitor_plugin_faults_total``,
    ...; contract 0.1.1)."""
    return _host.host_metrics()


def runs() -> list[ProgressNode]:
    """The running and paused runs, most recently updated first; the host gives
    at most 100 (contract 0.1.1)."""
    return _host.runs()


class log:
    """Lines in the host's log, tagged with the plugin's name (``print`` to stdout
    and stderr lands there too). The host shows those at or above its level
    (``MONITOR_LOG``, ``info`` by default) and cuts lines at 4 KiB."""

    @staticmethod
    def trace(message: str) -> None:
        _host.log(_host.LogLevel.TRACE, message)

    @staticmethod
    def debug(message: str) -> None:
        _host.log(_host.LogLevel.DEBUG, message)

    @staticmethod
    def info(message: str) -> None:
        _host.log(_host.LogLevel.INFO, message)

    @staticmethod
    def warn(message: str) -> None:
        _host.log(_host.LogLevel.WARN, message)

    @staticmethod
    def error(message: str) -> None:
        _host.log(_host.LogLevel.ERROR, message)


class kv:
    """The plugin's private, persistent key-value store (capability ``kv``): it
    survives restarts and upgrades; keys up to 256 bytes, values up to 64 KiB, at
    most 1,024 keys. ``monitor plugins kv NAME`` shows what a plugin stored."""

    @staticmethod
    def get(key: str) -> bytes | None:
        return _kv.get(key)

    @staticmethod
    def set(key: str, value: bytes) -> None:
        """Raises `Error` naming the limit when the key, value or store is too large."""
        try:
            _kv.set(key, value)
        except Err as e:
            raise Error(str(e.value)) from None

    @staticmethod
    def delete(key: str) -> None:
        _kv.delete(key)

    @staticmethod
    def keys(prefix: str = "") -> list[str]:
        return list(_kv.keys(prefix))

    @staticmethod
    def get_string(key: str) -> str | None:
        value = _kv.get(key)
        try:
            return None if value is None else bytes(value).decode()
        except UnicodeDecodeError:
            return None

    @staticmethod
    def set_string(key: str, value: str) -> None:
        kv.set(key, value.encode())


# ---------------------------------------------------------------------------
# Configuration

C = TypeVar("C")


def parse_config(text: str, schema: type[C]) -> C:
    """Parses ``NAME.toml`` into the dataclass ``schema``, or raises `Error` with one
    line naming the line, field and value, as ``monitor_sdk::config::from_toml`` does.

    Fields are ``str``, ``int``, ``float``, ``bool``, ``list[T]``, ``dict[str, T]``,
    ``T | None`` or another dataclass (a TOML table); a field without a default
    is required, and a key the dataclass does not name is refused. A
    ``__post_init__`` that raises `ValueError` rejects the value with its message.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # "Invalid value (at line 2, column 9)", or "(at end of document)".
        message = str(e)
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)$", "", message)
        found = re.search(r"\(at line (\d+)", message)
        lines = text.splitlines()
        number = int(found.group(1)) if found else len(lines) if "end of document" in message else 0
        if 0 < number <= len(lines):
            raise Error(f"line {number} `{lines[number - 1].strip()}`: {reason}") from None
        raise Error(reason) from None
    return _build(schema, data, text, "")


def _line_of(text: str, key: str) -> str:
    """``line N `key = ...`: `` for the first line that sets ``key``, if one does."""
    bare = key.rsplit(".", 1)[-1]
    pattern = re.compile(r"^\s*(" + re.escape(bare) + r'|"' + re.escape(bare) + r'")\s*=')
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return f"line {number} `{line.strip()}`: "
    return ""


def _build(schema: type[C], data: Mapping[str, Any], text: str, prefix: str) -> C:
    if not dataclasses.is_dataclass(schema):
        raise TypeError(f"parse_config takes a dataclass, not {schema!r}")
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    hints = typing.get_type_hints(schema)
    for key in data:
        if key not in fields:
            known = ", ".join(fields) or "none"
            raise Error(f"{_line_of(text, key)}unknown field `{prefix}{key}`; known fields: {known}")
    values = {}
    for name, field in fields.items():
        where = prefix + name
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise Error(f"missing field `{where}`")
            continue
        values[name] = _convert(hints[name], data[name], text, where)
    try:
        return schema(**values)
    except ValueError as e:
        raise Error(f"{prefix.rstrip('.') + ': ' if prefix else ''}{e}") from None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f'a string ("{value}")'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__} ({value})"


def _convert(hint: Any, value: Any, text: str, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, _pytypes.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, text, where)

    def wrong(expected: str) -> Error:
        return Error(f"{_line_of(text, where)}`{where}` must be {expected}, not {_describe(value)}")

    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if origin in (list, collections.abc.Sequence) or hint is list:
        if not isinstance(value, list):
            raise wrong("an array")
        (item,) = args or (Any,)
        return [_convert(item, v, text, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, collections.abc.Mapping) or hint is dict:
        if not isinstance(value, dict):
            raise wrong("a table")
        _, item = args or (str, Any)
        return {k: _convert(item, v, text, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise wrong(f"a table [{where}]")
        return _build(hint, value, text, where + ".")
    raise TypeError(f"parse_config: field `{where}` has type {hint!r}; use str, int, float, bool, list, dict or a dataclass")


# ---------------------------------------------------------------------------
# Roles


class PluginBase:
    """What every plugin is. Set ``NAME`` (kebab-case), ``VERSION`` and ``SUMMARY``;
    ``CAPABILITIES`` lists what it asks for (see `capability`); ``CONFIG``, a
    dataclass, makes the default `configure` parse ``NAME.toml`` into ``self.config``.

    The host makes one instance (``cls()``, no arguments) and calls ``configure``
    once with ``NAME.toml`` (empty text when there is none) before any role function.
    """

    NAME: ClassVar[str]
    VERSION: ClassVar[str]
    SUMMARY: ClassVar[str]
    CAPABILITIES: ClassVar[Sequence[CapabilityRequest]] = ()
    CONFIG: ClassVar[type | None] = None

    config: Any = None

    def configure(self, text: str) -> None:
        """Takes the text of ``NAME.toml``; raise `Error` naming the bad field and value."""
        if self.CONFIG is not None:
            self.config = parse_config(text, self.CONFIG)


class MetricProvider(PluginBase):
    """Metrics on every sampling tick; built with ``-w metric-provider``."""

    WORLD: ClassVar[str] = "metric-provider"

    def collect(self) -> list[Metric]:
        raise NotImplementedError(f"{type(self).__name__}.collect")


class ProgressCalculator(PluginBase):
    """A parent's progress (0..1) and ETA from its direct children; ``-w progress-calculator``."""

    WORLD: ClassVar[str] = "progress-calculator"

    def compute(self, parent: ProgressNode, children: list[ProgressNode]) -> ProgressEstimate:
        raise NotImplementedError(f"{type(self).__name__}.compute")


class AlertHandler(PluginBase):
    """Delivers each alert transition; ``-w alert-handler``."""

    WORLD: ClassVar[str] = "alert-handler"

    def handle(self, event: AlertEvent) -> None:
        raise NotImplementedError(f"{type(self).__name__}.handle")


class DisplayFormatter(PluginBase):
    """Renders a view as text (``view`` is ``View_Resources``, ``View_Progress``,
    ``View_Alerts`` or ``View_Status`` from ``wit_world.imports.types``);
    ``-w display-formatter``."""

    WORLD: ClassVar[str] = "display-formatter"

    def format(self, view: Any) -> str:
        raise NotImplementedError(f"{type(self).__name__}.format")


# Role base class, the class componentize-py looks up in the app module, its method.
_ROLES: list[tuple[type, str, str]] = [
    (MetricProvider, "Metrics", "collect"),
    (ProgressCalculator, "Progress", "compute"),
    (AlertHandler, "AlertEvents", "handle"),
    (DisplayFormatter, "Formatter", "format"),
]


def _call(what: str, function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Err:
        raise
    except Error as e:
        raise Err(str(e)) from None
    except Exception as e:
        frame = traceback.extract_tb(e.__traceback__)[-1:] or [None]
        at = f" at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame[0] else ""
        hint = ""
        if isinstance(e, ModuleNotFoundError):
            hint = "; import every module at the top of the plugin's module: only what it imported when built is in the plugin"
        _host.log(
            _host.LogLevel.ERROR,
            f"{what} raised {type(e).__name__}: {e}{at}, a fault (raise monitor_plugin.Error for an error){hint}",
        )
        raise


def export(cls: type[PluginBase]) -> tuple[type, ...]:
    """The classes componentize-py exports, for one line at the end of the module:
    ``Plugin, Metrics = export(ProcessCount)``.

    Checks ``cls`` (name, version, summary, capabilities) and that the bindings
    are for its roles' worlds; raises `TypeError` or `ValueError` with one line
    otherwise, which stops the build.
    """
    roles = [r for r in _ROLES if issubclass(cls, r[0])]
    if not roles:
        raise TypeError(f"{cls.__name__}: derive from MetricProvider, ProgressCalculator, AlertHandler or DisplayFormatter")
    for attr in ("NAME", "VERSION", "SUMMARY"):
        if not isinstance(getattr(cls, attr, None), str):
            raise TypeError(f"{cls.__name__}.{attr} must be set to a string")
    if not _NAME.match(cls.NAME):
        raise ValueError(f"{cls.__name__}.NAME = {cls.NAME!r}: use kebab-case, like 'log-patterns'")
    if not _VERSION.match(cls.VERSION):
        raise ValueError(f"{cls.__name__}.VERSION = {cls.VERSION!r}: use a semantic version, like '0.1.0'")
    if not cls.SUMMARY.strip() or len(cls.SUMMARY) > 200:
        raise ValueError(f"{cls.__name__}.SUMMARY: one line of at most 200 characters")
    for request in cls.CAPABILITIES:
        if not isinstance(request, CapabilityRequest):
            raise TypeError(f"{cls.__name__}.CAPABILITIES: make each with capability(name, reason)")
        capability(request.name, request.reason)
    if len(roles) == 1:
        build = f"build with `componentize-py -d /path/to/monitor/wit -w {roles[0][0].WORLD} componentize ...`"
    else:
        worlds = " and ".join(r[0].WORLD for r in roles)
        build = f"build against a world that includes {worlds} (see monitor_plugin's docstring)"
    for base, export_name, _ in _ROLES:
        has = hasattr(_exports, export_name)
        wanted = base in (r[0] for r in roles)
        if wanted and not has:
            raise TypeError(f"{cls.__name__} is a {base.WORLD}, but the bindings are for another world: {build}")
        if has and not wanted:
            raise TypeError(
                f"the bindings' world exports {export_name} ({base.WORLD}), which {cls.__name__} does not implement: "
                f"{build}, or derive from {base.__name__} too"
            )

    instance = cls()
    info = PluginInfo(
        name=cls.NAME, version=cls.VERSION, summary=cls.SUMMARY, capabilities=list(cls.CAPABILITIES)
    )

    class Plugin(_exports.Plugin):
        def describe(self) -> PluginInfo:
            return info

        def configure(self, config: str) -> None:
            _call("configure", instance.configure, config)

    out: list[type] = [Plugin]
    for base, export_name, method in _ROLES:
        if base not in (r[0] for r in roles):
            continue
        bound = getattr(instance, method)

        def forward(self: Any, *args: Any, _bound: Callable[..., Any] = bound, _method: str = method) -> Any:
            return _call(_method, _bound, *args)

        forward.__name__ = method
        out.append(type(export_name, (getattr(_exports, export_name),), {method: forward}))
    return tuple(out)
