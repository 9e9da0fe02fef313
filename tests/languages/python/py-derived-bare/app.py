"""py-derived-metrics on the bare bindings, without the helper: what the helper costs."""

from wit_world import exports
from wit_world.imports import host, types


def ratio(used: int, total: int) -> float:
    return 0.0 if total == 0 else used / total


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="py-derived-bare", version="0.1.0", summary="derived-metrics, bare bindings", capabilities=[])

    def configure(self, config: str) -> None:
        pass


class Metrics(exports.Metrics):
    def collect(self) -> list[types.Metric]:
        s = host.snapshot()
        cores = max(len(s.per_core_percent), 1)
        return [
            types.Metric("memory_used_ratio", ratio(s.memory_used_bytes, s.memory_total_bytes), "ratio", []),
            types.Metric("swap_used_ratio", ratio(s.swap_used_bytes, s.swap_total_bytes), "ratio", []),
            types.Metric("load_per_core", s.load_one / cores, "", [types.Label("window", "1m")]),
            types.Metric("load_per_core", s.load_five / cores, "", [types.Label("window", "5m")]),
            types.Metric("load_per_core", s.load_fifteen / cores, "", [types.Label("window", "15m")]),
        ]
