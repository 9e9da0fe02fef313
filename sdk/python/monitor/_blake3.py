"""BLAKE3 (hash and keyed hash, 32-byte output) in pure Python.

Used only to check the host's answer to a challenge before it is sent the
token, so speed does not matter: inputs are a few hundred bytes.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START, _CHUNK_END, _PARENT, _ROOT, _KEYED_HASH = 1, 2, 4, 8, 16
_BLOCK, _CHUNK = 64, 1024


def _g(s: list, a: int, b: int, c: int, d: int, x: int, y: int) -> None:
    s[a] = (s[a] + s[b] + x) & _MASK
    v = s[d] ^ s[a]
    s[d] = ((v >> 16) | (v << 16)) & _MASK
    s[c] = (s[c] + s[d]) & _MASK
    v = s[b] ^ s[c]
    s[b] = ((v >> 12) | (v << 20)) & _MASK
    s[a] = (s[a] + s[b] + y) & _MASK
    v = s[d] ^ s[a]
    s[d] = ((v >> 8) | (v << 24)) & _MASK
    s[c] = (s[c] + s[d]) & _MASK
    v = s[b] ^ s[c]
    s[b] = ((v >> 7) | (v << 25)) & _MASK


def _compress(cv: tuple, block: bytes, counter: int, block_len: int, flags: int) -> list:
    m = [int.from_bytes(block[i : i + 4], "little") for i in range(0, _BLOCK, 4)]
    s = list(cv) + list(_IV[:4]) + [counter & _MASK, (counter >> 32) & _MASK, block_len, flags]
    for round_ in range(7):
        _g(s, 0, 4, 8, 12, m[0], m[1])
        _g(s, 1, 5, 9, 13, m[2], m[3])
        _g(s, 2, 6, 10, 14, m[4], m[5])
        _g(s, 3, 7, 11, 15, m[6], m[7])
        _g(s, 0, 5, 10, 15, m[8], m[9])
        _g(s, 1, 6, 11, 12, m[10], m[11])
        _g(s, 2, 7, 8, 13, m[12], m[13])
        _g(s, 3, 4, 9, 14, m[14], m[15])
        if round_ < 6:
            m = [m[i] for i in _PERMUTATION]
    return [s[i] ^ s[i + 8] for i in range(8)] + [s[i + 8] ^ cv[i] for i in range(8)]


def _chunk_output(key: tuple, chunk: bytes, counter: int, flags: int) -> tuple:
    """The last block's compression inputs (cv, block, counter, len, flags)."""
    blocks = [chunk[i : i + _BLOCK] for i in range(0, len(chunk), _BLOCK)] or [b""]
    cv = key
    for i, block in enumerate(blocks[:-1]):
        start = _CHUNK_START if i == 0 else 0
        cv = tuple(_compress(cv, block, counter, _BLOCK, flags | start)[:8])
    last = blocks[-1]
    start = _CHUNK_START if len(blocks) == 1 else 0
    return (cv, last.ljust(_BLOCK, b"\0"), counter, len(last), flags | start | _CHUNK_END)


def _cv(output: tuple) -> tuple:
    cv, block, counter, block_len, flags = output
    return tuple(_compress(cv, block, counter, block_len, flags)[:8])


def _parent_output(left: tuple, right: tuple, key: tuple, flags: int) -> tuple:
    block = b"".join(w.to_bytes(4, "little") for w in left + right)
    return (key, block, 0, _BLOCK, flags | _PARENT)


def _hash(data: bytes, key: tuple, flags: int) -> bytes:
    chunks = [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)] or [b""]
    stack: list = []
    for counter, chunk in enumerate(chunks[:-1]):
        cv = _cv(_chunk_output(key, chunk, counter, flags))
        total = counter + 1
        while total & 1 == 0:
            cv = _cv(_parent_output(stack.pop(), cv, key, flags))
            total >>= 1
        stack.append(cv)
    output = _chunk_output(key, chunks[-1], len(chunks) - 1, flags)
    while stack:
        output = _parent_output(stack.pop(), _cv(output), key, flags)
    cv, block, counter, block_len, out_flags = output
    words = _compress(cv, block, counter, block_len, out_flags | _ROOT)[:8]
    return b"".join(w.to_bytes(4, "little") for w in words)


def blake3(data: bytes) -> bytes:
    """The 32-byte BLAKE3 hash of `data`."""
    return _hash(data, _IV, 0)


def blake3_keyed(key: bytes, data: bytes) -> bytes:
    """The 32-byte BLAKE3 keyed hash of `data` under a 32-byte `key`."""
    if len(key) != 32:
        raise ValueError("a BLAKE3 key is 32 bytes")
    words = tuple(int.from_bytes(key[i : i + 4], "little") for i in range(0, 32, 4))
    return _hash(data, words, _KEYED_HASH)


def proof(token: str, challenge: str) -> str:
    """What a host holding `token` answers to `challenge` at /v1/health."""
    key = blake3(b"monitor api-token proof\0" + token.encode())
    return blake3_keyed(key, challenge.encode()).hex()
