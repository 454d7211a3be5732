"""A partition engine's checkpoint, as entries of a Faust table (changelog-backed: a Kafka topic).

The engine's state is its snapshot (``Engine.snapshot``: JSON-able), compressed and cut into chunks small
enough for a Kafka record (Kafka's default limit is 1 MB). A checkpoint of partition ``p`` is written as its
chunks under ``p/<generation>/<i>`` and then a manifest under ``p`` naming the generation, the last offset of
``readings`` it reflects, the chunk count, a checksum and the rules' fingerprint; then the previous
generation's chunks are deleted. A worker that crashes half-way leaves the old manifest pointing at the old,
complete chunks; a torn or mismatched checkpoint is refused with a clear error, never restored.

Pure functions: ``encode`` gives the table entries to write, ``decode`` takes a lookup and gives the snapshot.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

CHUNK_BYTES = 512 * 1024


class CheckpointError(ValueError):
    """A checkpoint in the table cannot be restored (missing chunk, bad checksum, unknown format)."""


@dataclass(frozen=True, slots=True)
class Manifest:
    partition: int
    generation: int
    offset: int  # the last ``readings`` offset whose effect is in the snapshot (-1: none)
    chunks: int
    sha256: str
    rules: str  # the rule set's fingerprint when it was written
    watermark: float | None

    def to_bytes(self) -> bytes:
        return orjson.dumps({"v": 1, "partition": self.partition, "generation": self.generation,
                             "offset": self.offset, "chunks": self.chunks, "sha256": self.sha256,
                             "rules": self.rules, "watermark": self.watermark})

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            d = orjson.loads(raw)
            if d.get("v") != 1:
                raise CheckpointError(f"unknown checkpoint manifest version {d.get('v')!r}")
            return cls(int(d["partition"]), int(d["generation"]), int(d["offset"]), int(d["chunks"]),
                       str(d["sha256"]), str(d["rules"]), None if d["watermark"] is None else float(d["watermark"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"unreadable checkpoint manifest: {type(exc).__name__}: {exc}") from None


def manifest_key(partition: int) -> bytes:
    return str(partition).encode()


def chunk_key(partition: int, generation: int, i: int) -> bytes:
    return f"{partition}/{generation}/{i}".encode()


def encode(partition: int, generation: int, offset: int, snapshot: Mapping[str, Any], rules: str,
           watermark: float | None, chunk_bytes: int = CHUNK_BYTES) -> tuple[list[tuple[bytes, bytes]], Manifest]:
    """The chunk entries (write them first) and the manifest (write it last) of one checkpoint."""
    blob = zlib.compress(orjson.dumps(snapshot), 1)
    pieces = [blob[i:i + chunk_bytes] for i in range(0, len(blob), chunk_bytes)] or [b""]
    manifest = Manifest(partition, generation, offset, len(pieces), hashlib.sha256(blob).hexdigest(), rules,
                        watermark)
    return [(chunk_key(partition, generation, i), piece) for i, piece in enumerate(pieces)], manifest


def decode(manifest: Manifest, lookup: Callable[[bytes], bytes | None]) -> dict[str, Any]:
    """The snapshot a manifest names, from its chunks (``lookup``: the table's ``get``)."""
    pieces = []
    for i in range(manifest.chunks):
        piece = lookup(chunk_key(manifest.partition, manifest.generation, i))
        if piece is None:
            raise CheckpointError(f"checkpoint of partition {manifest.partition} (generation {manifest.generation}"
                                  f"): chunk {i} of {manifest.chunks} is missing")
        pieces.append(piece)
    blob = b"".join(pieces)
    if hashlib.sha256(blob).hexdigest() != manifest.sha256:
        raise CheckpointError(f"checkpoint of partition {manifest.partition} (generation {manifest.generation}): "
                              "checksum mismatch")
    snap = orjson.loads(zlib.decompress(blob))
    if not isinstance(snap, dict):
        raise CheckpointError(f"checkpoint of partition {manifest.partition}: not an engine snapshot")
    return snap


def rules_fingerprint(texts: Mapping[str, bytes]) -> str:
    """A short fingerprint of the rule files (name -> bytes), logged when a worker restores a checkpoint written
    under other rules (a roll-out: state of removed rules is dropped, new rules start empty)."""
    h = hashlib.sha256()
    for name in sorted(texts):
        h.update(name.encode() + b"\0" + texts[name] + b"\0")
    return h.hexdigest()[:16]
