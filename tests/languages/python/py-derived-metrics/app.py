"""derived-metrics (plugins/derived-metrics) line for line in Python, with monitor_plugin."""

from monitor_plugin import Metric, MetricProvider, SystemSnapshot, export, metric, snapshot


def ratio(used: int, total: int) -> float:
    return 0.0 if total == 0 else used / total


def derive(s: SystemSnapshot) -> list[Metric]:
    cores = max(len(s.per_core_percent), 1)
    return [
        metric("memory_used_ratio", ratio(s.memory_used_bytes, s.memory_total_bytes), "ratio"),
        metric("swap_used_ratio", ratio(s.swap_used_bytes, s.swap_total_bytes), "ratio"),
        metric("load_per_core", s.load_one / cores, labels={"window": "1m"}),
        metric("load_per_core", s.load_five / cores, labels={"window": "5m"}),
        metric("load_per_core", s.load_fifteen / cores, labels={"window": "15m"}),
    ]


class DerivedMetrics(MetricProvider):
    NAME = "py-derived-metrics"
    VERSION = "0.1.0"
    SUMMARY = "memory and swap use ratios, load average per core"

    def collect(self) -> list[Metric]:
        return derive(snapshot())


Plugin, Metrics = export(DerivedMetrics)
