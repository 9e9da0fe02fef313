"""Node ids, checked by the same rules as the host's (host/src/progress/path.rs)."""

from __future__ import annotations

MAX_SEGMENTS = 16
"""Most segments a path may have (a run plus 15 levels below it)."""
MAX_SEGMENT_BYTES = 64
MAX_PATH_BYTES = 256

_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_path(path: object) -> str:
    """`path` if it is a valid node id such as ``train-42/build``; ValueError naming the rule otherwise."""
    if not isinstance(path, str):
        raise ValueError(f"node id {path!r} is not a string; write a run name such as 'train-42' or a path such as 'train-42/build'")
    if not path:
        raise ValueError("node id is empty; write a run name such as 'train-42' or a path such as 'train-42/build'")
    size = len(path.encode())
    if size > MAX_PATH_BYTES:
        raise ValueError(f"node id of {size} bytes is too long; the limit is {MAX_PATH_BYTES}")
    if path.startswith("/") or path.endswith("/"):
        raise ValueError(f"node id '{path}' starts or ends with '/'; write segments separated by single '/', e.g. 'run/step'")
    segments = path.split("/")
    if "" in segments:
        raise ValueError(f"node id '{path}' has an empty segment; write segments separated by single '/'")
    if len(segments) > MAX_SEGMENTS:
        raise ValueError(f"node id '{path}' has {len(segments)} segments; the limit is {MAX_SEGMENTS}")
    for segment in segments:
        _check_segment(segment)
    return path


def check_name(name: object) -> str:
    """`name` if it is one valid segment (a phase or step name); ValueError otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"name {name!r} is not a string; write a name such as 'build'")
    if "/" in name or not name:
        raise ValueError(f"name '{name}' is not one segment; write a name such as 'build' (letters, digits, '.', '_', '-')")
    _check_segment(name)
    return name


def _check_segment(segment: str) -> None:
    size = len(segment.encode())
    if size > MAX_SEGMENT_BYTES:
        raise ValueError(f"segment '{segment}' is {size} bytes long; the limit is {MAX_SEGMENT_BYTES}")
    for c in segment:
        if c not in _ALLOWED:
            raise ValueError(f"segment '{segment}' contains {c!r}; use only letters, digits, '.', '_' and '-'")
    if segment[0] in ".-":
        raise ValueError(f"segment '{segment}' starts with '{segment[0]}'; start it with a letter, digit or '_'")
