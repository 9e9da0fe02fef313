"""The floor: bare bindings, no helper; collect returns no metrics (as Rust's fx-empty)."""

from wit_world import exports
from wit_world.imports import types


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="py-empty", version="0.1.0", summary="returns no metrics", capabilities=[])

    def configure(self, config: str) -> None:
        pass


class Metrics(exports.Metrics):
    def collect(self) -> list[types.Metric]:
        return []
