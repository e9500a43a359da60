"""Neuroglancer's sharded format, ``neuroglancer_uint64_sharded_v1``, written and read to the letter.

A sharded dataset keeps many small objects ("chunks", keyed by a uint64) in ``2**shard_bits``
files ``<shard>.shard``.  Each file starts with a fixed-size *shard index* (``2**minishard_bits``
pairs of uint64le ``[start, end)`` offsets, relative to the end of the shard index) pointing at
*minishard indexes*: ``[3, n]`` uint64le arrays (ids delta-encoded, data offsets delta-encoded
from the end of the previous chunk, sizes), raw or gzip-compressed.  A key goes to shard and
minishard by bits of ``hash(key >> preshift_bits)``.

Volumes key their chunks by the *compressed Morton code* of the chunk's grid position
(:func:`compressed_morton_code`); with the identity hash, the chunks of one shard then form one
grid-aligned block (:func:`shard_block_shape`), which is what lets one task write one shard.
Multi-resolution meshes key their manifests by segment id with ``murmurhash3_x86_128``.

Shard files are written whole (:func:`encode_shard`) and read either whole
(:func:`decode_shard`) or by ranged reads (:class:`ShardReader`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import InvalidRequest, NgshowError

__all__ = [
    "SHARDED_TYPE",
    "ShardError",
    "ShardReader",
    "ShardingSpec",
    "compressed_morton_code",
    "decode_shard",
    "encode_shard",
    "morton_bits",
    "shard_block_shape",
]

SHARDED_TYPE = "neuroglancer_uint64_sharded_v1"
_U64 = (1 << 64) - 1
_ENCODINGS = ("raw", "gzip")
_HASHES = ("identity", "murmurhash3_x86_128")

#: Reads ``[start, end)`` of one shard file; may return fewer bytes at the end of the file.
RangeReader = Callable[[int, int], bytes]


class ShardError(NgshowError, ValueError):
    """A shard file does not match its sharding specification (truncated, corrupt index, ...)."""


def _gzip(data: bytes) -> bytes:
    # libdeflate: deterministic (its gzip header has mtime 0, and its output depends on the
    # input alone), so reruns and resumed runs write the same bytes.  ISA-L's level 1, faster,
    # was seen giving different (valid) streams for the same input when threads compress at once.
    import deflate

    return bytes(deflate.gzip_compress(data, 1))


def _gunzip(data: bytes) -> bytes:
    try:
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    except zlib.error as e:
        raise ShardError(f"gzip data does not decode: {e}") from e


@dataclass(frozen=True)
class ShardingSpec:
    """A ``"sharding"`` member of an ``info`` document.

    Parameters
    ----------
    preshift_bits
        Low bits of a key that do not take part in the hash.
    minishard_bits, shard_bits
        Bits of the hashed key giving the minishard (``[0, minishard_bits)``) and the shard
        (the next ``shard_bits``).
    hash
        ``"identity"`` or ``"murmurhash3_x86_128"``.
    minishard_index_encoding, data_encoding
        ``"raw"`` or ``"gzip"``.
    """

    preshift_bits: int
    minishard_bits: int
    shard_bits: int
    hash: Literal["identity", "murmurhash3_x86_128"] = "identity"
    minishard_index_encoding: Literal["raw", "gzip"] = "gzip"
    data_encoding: Literal["raw", "gzip"] = "raw"

    def __post_init__(self) -> None:
        for name in ("preshift_bits", "minishard_bits", "shard_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 64:
                raise InvalidRequest(f"sharding {name} must be an integer in [0, 64], got {value!r}")
        if self.minishard_bits + self.shard_bits > 64:
            raise InvalidRequest(
                f"sharding minishard_bits + shard_bits must be at most 64, got "
                f"{self.minishard_bits} + {self.shard_bits}"
            )
        if self.hash not in _HASHES:
            raise InvalidRequest(f"sharding hash must be one of {_HASHES}, got {self.hash!r}")
        for name in ("minishard_index_encoding", "data_encoding"):
            if getattr(self, name) not in _ENCODINGS:
                raise InvalidRequest(
                    f"sharding {name} must be 'raw' or 'gzip', got {getattr(self, name)!r}"
                )

    # --- JSON ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The ``"sharding"`` JSON object."""
        return {
            "@type": SHARDED_TYPE,
            "preshift_bits": int(self.preshift_bits),
            "hash": self.hash,
            "minishard_bits": int(self.minishard_bits),
            "shard_bits": int(self.shard_bits),
            "minishard_index_encoding": self.minishard_index_encoding,
            "data_encoding": self.data_encoding,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ShardingSpec:
        """Parse a ``"sharding"`` JSON object.

        Raises
        ------
        InvalidRequest
            If it is not a valid ``neuroglancer_uint64_sharded_v1`` specification.
        """
        if not isinstance(obj, dict):
            raise InvalidRequest(f"sharding must be a JSON object, got {obj!r}")
        if obj.get("@type") != SHARDED_TYPE:
            raise InvalidRequest(f"sharding @type must be {SHARDED_TYPE!r}, got {obj.get('@type')!r}")
        missing = [k for k in ("preshift_bits", "hash", "minishard_bits", "shard_bits") if k not in obj]
        if missing:
            raise InvalidRequest(f"sharding is missing {', '.join(missing)}")
        return cls(
            preshift_bits=obj["preshift_bits"],
            minishard_bits=obj["minishard_bits"],
            shard_bits=obj["shard_bits"],
            hash=obj["hash"],
            minishard_index_encoding=obj.get("minishard_index_encoding", "raw"),
            data_encoding=obj.get("data_encoding", "raw"),
        )

    # --- keys ---------------------------------------------------------------------------

    @property
    def num_shards(self) -> int:
        return 1 << self.shard_bits

    @property
    def num_minishards(self) -> int:
        return 1 << self.minishard_bits

    @property
    def shard_index_bytes(self) -> int:
        """Size of the fixed shard index at the start of every shard file."""
        return 16 << self.minishard_bits

    def hashed(self, key: int) -> int:
        """``hash(key >> preshift_bits)`` as a uint64."""
        shifted = (int(key) & _U64) >> self.preshift_bits
        if self.hash == "identity":
            return shifted
        import mmh3

        # MurmurHash3_x86_128 of the little-endian uint64; the low 8 bytes of the 16-byte
        # digest, read as a little-endian uint64.
        digest = mmh3.hash_bytes(shifted.to_bytes(8, "little"), 0, x64arch=False)
        return int.from_bytes(digest[:8], "little")

    def shard_and_minishard(self, key: int) -> tuple[int, int]:
        """``(shard, minishard)`` numbers of ``key``."""
        h = self.hashed(key)
        minishard = h & ((1 << self.minishard_bits) - 1)
        shard = (h >> self.minishard_bits) & ((1 << self.shard_bits) - 1)
        return shard, minishard

    def locations(self, keys: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Shard and minishard numbers (uint64 arrays) of many keys at once."""
        keys = np.asarray(keys, dtype=np.uint64)
        if self.hash == "identity":
            h = keys >> np.uint64(self.preshift_bits)
        else:
            h = np.fromiter((self.hashed(int(k)) for k in keys.ravel()), np.uint64, keys.size)
            h = h.reshape(keys.shape)
        minishard = h & np.uint64((1 << self.minishard_bits) - 1)
        shard = (h >> np.uint64(self.minishard_bits)) & np.uint64((1 << self.shard_bits) - 1)
        return shard, minishard

    def shard_name(self, shard: int) -> str:
        """``<shard>.shard``: lowercase hex, zero-padded to ``ceil(shard_bits / 4)`` digits."""
        if not 0 <= shard < self.num_shards:
            raise InvalidRequest(f"shard {shard} is out of range [0, {self.num_shards})")
        return f"{shard:0{-(-self.shard_bits // 4)}x}.shard"

    def group(self, keys: Iterable[int]) -> dict[int, list[int]]:
        """Keys grouped by shard number."""
        out: dict[int, list[int]] = {}
        for key in keys:
            out.setdefault(self.shard_and_minishard(key)[0], []).append(int(key))
        return out


# --- writing ----------------------------------------------------------------------------------


def encode_shard(
    chunks: Mapping[int, bytes],
    spec: ShardingSpec,
    *,
    prefixes: Mapping[int, bytes] | None = None,
) -> bytes:
    """The bytes of one shard file holding ``chunks`` (key -> data, before ``data_encoding``).

    Chunks are laid out by minishard, then by key; the minishard indexes follow the data.  Every
    key must belong to the same shard.  ``prefixes`` (key -> bytes) are stored, unindexed and
    unencoded, immediately before their chunk: the multi-resolution mesh format keeps a segment's
    fragment data right before its manifest.

    Raises
    ------
    InvalidRequest
        If the keys belong to different shards, or a prefix has no chunk.
    """
    prefixes = prefixes or {}
    stray = set(prefixes) - set(chunks)
    if stray:
        raise InvalidRequest(f"prefixes for keys without a chunk: {sorted(stray)[:5]}")
    placed: dict[int, list[int]] = {}
    shards = set()
    for key in chunks:
        shard, minishard = spec.shard_and_minishard(key)
        shards.add(shard)
        placed.setdefault(minishard, []).append(int(key))
    if len(shards) > 1:
        raise InvalidRequest(f"keys of one shard file fall in shards {sorted(shards)[:5]}")
    index_end = spec.shard_index_bytes
    body: list[bytes] = []
    offset = 0  # relative to index_end
    entries: dict[int, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
    for minishard in sorted(placed):
        keys = sorted(placed[minishard])
        starts = np.empty(len(keys), dtype=np.uint64)
        sizes = np.empty(len(keys), dtype=np.uint64)
        for i, key in enumerate(keys):
            prefix = prefixes.get(key, b"")
            if prefix:
                body.append(prefix)
                offset += len(prefix)
            data = chunks[key]
            if spec.data_encoding == "gzip":
                data = _gzip(data)
            body.append(data)
            starts[i], sizes[i] = offset, len(data)
            offset += len(data)
        entries[minishard] = (np.asarray(keys, dtype=np.uint64), starts, sizes)
    shard_index = np.zeros((spec.num_minishards, 2), dtype="<u8")
    for minishard in sorted(entries):
        keys_a, starts, sizes = entries[minishard]
        table = np.empty((3, len(keys_a)), dtype="<u8")
        table[0] = np.diff(keys_a, prepend=np.uint64(0))
        ends = starts + sizes
        table[1] = starts - np.concatenate(([np.uint64(0)], ends[:-1])).astype(np.uint64)
        table[2] = sizes
        encoded = table.tobytes()
        if spec.minishard_index_encoding == "gzip":
            encoded = _gzip(encoded)
        shard_index[minishard] = (offset, offset + len(encoded))
        body.append(encoded)
        offset += len(encoded)
    return shard_index.tobytes() + b"".join(body)


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinishardEntry:
    """One chunk of a minishard index: absolute ``[start, end)`` byte range in the shard file."""

    key: int
    start: int
    end: int


def _decode_minishard_index(raw: bytes, spec: ShardingSpec, where: str) -> list[MinishardEntry]:
    if spec.minishard_index_encoding == "gzip":
        try:
            raw = _gunzip(raw)
        except ShardError as e:
            raise ShardError(f"{where} index: {e}") from None
    if len(raw) % 24:
        raise ShardError(f"{where}: minishard index of {len(raw)} bytes is not a multiple of 24")
    n = len(raw) // 24
    table = np.frombuffer(raw, dtype="<u8").reshape(3, n).astype(object)
    out: list[MinishardEntry] = []
    key = 0
    end = spec.shard_index_bytes
    for i in range(n):
        key = (key + int(table[0, i])) & _U64
        start = end + int(table[1, i])
        end = start + int(table[2, i])
        out.append(MinishardEntry(key, start, end))
    return out


class ShardReader:
    """Look keys up in one shard file by ranged reads.

    Parameters
    ----------
    read
        ``read(start, end)`` returns bytes ``[start, end)`` of the shard file.
    spec
        The sharding specification.
    size
        The file's size, if known: every range is then checked against it.
    name
        Used in error messages.
    """

    def __init__(
        self, read: RangeReader, spec: ShardingSpec, *, size: int | None = None, name: str = "shard"
    ) -> None:
        self._read = read
        self.spec = spec
        self.size = size
        self.name = name
        self._shard_index: np.ndarray[Any, Any] | None = None
        self._minishards: dict[int, list[MinishardEntry]] = {}

    def _get(self, start: int, end: int, what: str) -> bytes:
        if start > end or (self.size is not None and end > self.size):
            raise ShardError(
                f"{self.name}: {what} [{start}, {end}) lies outside the file of {self.size} bytes"
            )
        data = self._read(start, end)
        if len(data) != end - start:
            raise ShardError(
                f"{self.name}: {what} [{start}, {end}) is truncated ({len(data)} bytes read)"
            )
        return data

    def shard_index(self) -> np.ndarray[Any, Any]:
        """The ``[2**minishard_bits, 2]`` array of absolute minishard-index byte ranges."""
        if self._shard_index is None:
            raw = self._get(0, self.spec.shard_index_bytes, "shard index")
            table = np.frombuffer(raw, dtype="<u8").reshape(-1, 2).astype(np.int64)
            if (table[:, 1] < table[:, 0]).any() or (table < 0).any():
                raise ShardError(f"{self.name}: shard index has an end before its start")
            self._shard_index = table + self.spec.shard_index_bytes
        return self._shard_index

    def minishard(self, minishard: int) -> list[MinishardEntry]:
        """The entries of one minishard, in index order."""
        if minishard not in self._minishards:
            start, end = (int(v) for v in self.shard_index()[minishard])
            if start == end:
                entries: list[MinishardEntry] = []
            else:
                raw = self._get(start, end, f"minishard {minishard} index")
                entries = _decode_minishard_index(raw, self.spec, f"{self.name} minishard {minishard}")
            for e in entries:
                if e.start < self.spec.shard_index_bytes or (self.size is not None and e.end > self.size):
                    raise ShardError(
                        f"{self.name}: chunk {e.key} at [{e.start}, {e.end}) lies outside the "
                        f"file's data of {self.size} bytes"
                    )
                if e.end > start and e.start < end:
                    raise ShardError(f"{self.name}: chunk {e.key} overlaps its minishard index")
            self._minishards[minishard] = entries
        return self._minishards[minishard]

    def entries(self) -> list[MinishardEntry]:
        """Every entry of every minishard."""
        out: list[MinishardEntry] = []
        for m in range(self.spec.num_minishards):
            out.extend(self.minishard(m))
        return out

    def locate(self, key: int) -> MinishardEntry | None:
        """Where ``key``'s data lies, or None if this shard does not hold it."""
        _shard, minishard = self.spec.shard_and_minishard(key)
        for e in self.minishard(minishard):
            if e.key == key:
                return e
        return None

    def get(self, key: int) -> bytes | None:
        """``key``'s data (decoded from ``data_encoding``), or None."""
        e = self.locate(key)
        if e is None:
            return None
        return self.decode(self._get(e.start, e.end, f"chunk {key}"))

    def get_many(self, keys: Iterable[int]) -> dict[int, bytes]:
        """Data of each key held here, reading each minishard's wanted run of data at once."""
        by_minishard: dict[int, list[MinishardEntry]] = {}
        for key in keys:
            e = self.locate(key)
            if e is not None:
                by_minishard.setdefault(self.spec.shard_and_minishard(key)[1], []).append(e)
        out: dict[int, bytes] = {}
        for found in by_minishard.values():
            lo = min(e.start for e in found)
            hi = max(e.end for e in found)
            run = self._get(lo, hi, "chunk data")
            for e in found:
                out[e.key] = self.decode(run[e.start - lo : e.end - lo])
        return out

    def read(self, start: int, end: int) -> bytes:
        """Raw bytes ``[start, end)`` of the file (checked against its size)."""
        return self._get(start, end, "range")

    def decode(self, data: bytes) -> bytes:
        """Undo ``data_encoding``."""
        return _gunzip(data) if self.spec.data_encoding == "gzip" else bytes(data)


def decode_shard(data: bytes, spec: ShardingSpec, *, name: str = "shard") -> dict[int, bytes]:
    """Every chunk of a whole shard file (key -> decoded data), checking every range.

    Raises
    ------
    ShardError
        If an index is out of bounds or corrupt, a key sits in the wrong minishard or shard, or
        a key appears twice.
    """
    view = memoryview(data)
    reader = ShardReader(lambda a, b: bytes(view[a:b]), spec, size=len(data), name=name)
    out: dict[int, bytes] = {}
    shards = set()
    for m in range(spec.num_minishards):
        for e in reader.minishard(m):
            shard, minishard = spec.shard_and_minishard(e.key)
            if minishard != m:
                raise ShardError(f"{name}: key {e.key} is listed in minishard {m}, not {minishard}")
            if e.key in out:
                raise ShardError(f"{name}: key {e.key} is listed twice")
            shards.add(shard)
            out[e.key] = reader.decode(reader.read(e.start, e.end))
    if len(shards) > 1:
        raise ShardError(f"{name}: holds keys of shards {sorted(shards)[:5]}")
    return out


# --- compressed Morton codes ------------------------------------------------------------------


def morton_bits(grid_size: Sequence[int]) -> list[int]:
    """For each bit of a compressed Morton code, low to high, the axis (0, 1, 2) it comes from."""
    out: list[int] = []
    top = max(int(g) for g in grid_size)
    i = 0
    while (1 << i) < top:
        for axis in range(3):
            if (1 << i) < int(grid_size[axis]):
                out.append(axis)
        i += 1
    if len(out) > 64:
        raise InvalidRequest(f"a chunk grid of {tuple(grid_size)} needs {len(out)} > 64 Morton bits")
    return out


def compressed_morton_code(
    positions: Sequence[int] | np.ndarray[Any, Any], grid_size: Sequence[int]
) -> np.ndarray[Any, Any]:
    """Compressed Morton codes (uint64) of grid positions ``(..., 3)`` (x, y, z) in ``grid_size``.

    Bits of an axis that are zero for every cell of the grid are skipped (Neuroglancer's
    ``volume.md``, "Compressed morton code").
    """
    pos = np.asarray(positions, dtype=np.uint64)
    if pos.shape[-1:] != (3,):
        raise InvalidRequest(f"grid positions must end in an axis of 3 (x, y, z), got {pos.shape}")
    if (pos >= np.asarray(grid_size, dtype=np.uint64)).any():
        raise InvalidRequest(f"grid positions lie outside the grid {tuple(grid_size)}")
    code = np.zeros(pos.shape[:-1], dtype=np.uint64)
    seen = [0, 0, 0]
    for j, axis in enumerate(morton_bits(grid_size)):
        bit = (pos[..., axis] >> np.uint64(seen[axis])) & np.uint64(1)
        code |= bit << np.uint64(j)
        seen[axis] += 1
    return code


def shard_block_shape(grid_size: Sequence[int], low_bits: int) -> tuple[int, int, int]:
    """The (x, y, z) chunk-grid block whose cells share every Morton bit above ``low_bits``.

    With the identity hash, ``low_bits = preshift_bits + minishard_bits`` makes these blocks
    (aligned to multiples of their shape) exactly the shards.
    """
    bits = morton_bits(grid_size)
    shape = [1, 1, 1]
    for axis in bits[:low_bits]:
        shape[axis] *= 2
    return (shape[0], shape[1], shape[2])


def volume_sharding(
    grid_size: Sequence[int], chunks_per_shard: int, *, data_encoding: Literal["raw", "gzip"] = "raw"
) -> ShardingSpec:
    """Identity-hash sharding of a chunk grid with at most ``chunks_per_shard`` chunks a shard.

    Each shard is one grid-aligned block of ``2**(preshift_bits + minishard_bits)`` chunks; each
    minishard holds up to 8 neighbouring chunks, so the client fetches small indexes.

    Raises
    ------
    InvalidRequest
        If ``chunks_per_shard`` is below 1, or the grid needs more than 64 Morton bits.
    """
    if chunks_per_shard < 1:
        raise InvalidRequest(f"a shard must hold at least one chunk, got {chunks_per_shard}")
    total = len(morton_bits(grid_size))
    low = min(total, int(math.floor(math.log2(chunks_per_shard))))
    preshift = min(3, low)
    return ShardingSpec(
        preshift_bits=preshift,
        minishard_bits=low - preshift,
        shard_bits=total - low,
        hash="identity",
        minishard_index_encoding="gzip",
        data_encoding=data_encoding,
    )
