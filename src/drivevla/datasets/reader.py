"""Read a demonstration dataset (format: :mod:`drivevla.datasets.format`).

``open_dataset(DIR)`` reads ``meta/info.json`` and ``meta/episodes.jsonl`` and gives each
episode's frames as a ``pyarrow.Table`` (``read_episode``) or one dict per frame
(``iter_frames``). Damaged data raises :class:`CorruptDataError` naming the file and the row
(a Parquet shard that cannot be parsed, a row group that cannot be decoded, a JPEG that does
not decode) or the line of ``episodes.jsonl`` (not JSON, unfinished, or without the fields a
reader needs); with ``skip_corrupt=True`` the damaged shards, rows and lines are skipped
instead and ``dataset.skipped`` counts and lists them. Nothing is ever left out silently.

Nothing here needs drivevla's simulator: a dataset is plain Parquet + JSON and pyarrow,
pandas or Hugging Face ``datasets`` read it directly.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivevla.core.errors import InvalidFileError, read_json
from drivevla.core.types import CameraSpec
from drivevla.datasets.format import (
    EPISODES_PATH,
    FEATURES,
    INFO_PATH,
    READER_FIELDS,
    CorruptDataError,
    feature_names,
    read_episode_log,
)

logger = logging.getLogger(__name__)

SPLIT_FRACTIONS = (("train", 0.90), ("val", 0.05), ("test", 0.05))


@dataclass
class SkipReport:
    """What ``skip_corrupt=True`` left out, with the errors: whole shards (and the episodes
    they hold), single rows, and lines of ``episodes.jsonl`` (episodes of unknown size)."""

    files: int = 0
    rows: int = 0
    episodes: list[str] = field(default_factory=list)  # ids whose whole shard was skipped
    lines: list[int] = field(default_factory=list)  # line numbers in meta/episodes.jsonl
    errors: list[str] = field(default_factory=list)

    def add(self, error: CorruptDataError, rows: int = 0, whole_file: bool = False,
            episode_id: str | None = None) -> None:
        self.files += int(whole_file)
        self.rows += rows
        if episode_id is not None:
            self.episodes.append(episode_id)
        if error.line is not None:
            self.lines.append(error.line)
        self.errors.append(str(error))
        logger.warning("skipping: %s", error)

    def merge(self, other: SkipReport) -> None:
        """Add what ``other`` left out (no new warnings: it logged its own)."""
        self.files += other.files
        self.rows += other.rows
        self.episodes += other.episodes
        self.lines += other.lines
        self.errors += other.errors

    def __bool__(self) -> bool:
        return bool(self.errors)

    def summary(self) -> str:
        """One line: what was left out (empty report: 'nothing')."""
        parts = []
        if self.files:
            parts.append(f"{self.files} shard(s) (episodes {', '.join(self.episodes)})")
        if self.rows:
            parts.append(f"{self.rows} frame(s)")
        if self.lines:
            parts.append(f"{len(self.lines)} line(s) of {EPISODES_PATH} "
                         f"(line {', '.join(map(str, self.lines))})")
        return ", ".join(parts) or "nothing"

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "rows": self.rows, "episodes": list(self.episodes),
                "episodes_jsonl_lines": list(self.lines), "errors": list(self.errors)}


def arrow_schema(cameras: Sequence[str]):
    """The ``pyarrow.Schema`` of a frame table for these camera names (FEATURES order)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "binary": pa.binary(),
        "list<float32>": pa.list_(pa.float32()),
    }
    dtype = {f.name: f.dtype for f in FEATURES}
    fields = []
    for name in feature_names(list(cameras)):
        key = "image.<camera>" if name.startswith("image.") else name
        fields.append(pa.field(name, types[dtype[key]], nullable=False))
    return pa.schema(fields, metadata={b"drivevla.schema": b"demonstrations"})


def split_of(episode_id: str, seed: int = 0) -> str:
    """``'train'``, ``'val'`` or ``'test'`` (90/5/5) from a hash of the id and the split seed.

    Stable: adding episodes never moves an existing one to another split."""
    h = hashlib.sha256(f"{int(seed)}:{episode_id}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    acc = 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if u < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


def decode_jpeg(data: bytes, path: str | Path = "?", row: int | None = None, column: str = ""):
    """(H, W, 3) uint8 RGB from JPEG bytes; :class:`CorruptDataError` when it does not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG":
                raise OSError(f"not a JPEG (format {im.format})")
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, ...
        raise CorruptDataError(path, row, f"undecodable JPEG: {exc}", column) from exc


class DemoDataset:
    """One dataset directory: metadata, episodes, shards (see module docstring)."""

    def __init__(self, root: str | Path, skip_corrupt: bool = False) -> None:
        self.root = Path(root)
        info_path = self.root / INFO_PATH
        if not info_path.is_file():
            raise FileNotFoundError(
                f"{self.root} is not a dataset: no {INFO_PATH} (make one with drivevla collect)"
            )
        self.info: dict[str, Any] = read_json(info_path)
        if not isinstance(self.info, dict):
            raise InvalidFileError(info_path, f"expected a JSON object, got "
                                              f"{type(self.info).__name__}")
        self.skip_corrupt = skip_corrupt
        self.skipped = SkipReport()
        self.episodes: list[dict[str, Any]] = self._read_episodes()
        self._by_id = {e["episode_id"]: e for e in self.episodes}

    def _read_episodes(self) -> list[dict[str, Any]]:
        """Records of ``episodes.jsonl``: a bad line (an unfinished last one included)
        raises, or with ``skip_corrupt`` is left out and counted in ``skipped``."""
        records, bad = read_episode_log(self.root / EPISODES_PATH, READER_FIELDS,
                                        skip_bad=self.skip_corrupt)
        for error in bad:
            self.skipped.add(error)
        # a rewritten episode: the last line wins
        by_id = {rec["episode_id"]: rec for rec in records}
        return sorted(by_id.values(), key=lambda e: e["episode_id"])

    # ------------------------------------------------------------------ metadata
    @property
    def cameras(self) -> list[str]:
        """Camera names in info.json order (the order images are stacked in)."""
        return [c["name"] for c in self.info.get("cameras", [])]

    @property
    def camera_specs(self) -> list[Any]:

        return [CameraSpec.from_dict(dict(c)) for c in self.info.get("cameras", [])]

    @property
    def episode_ids(self) -> list[str]:
        return [e["episode_id"] for e in self.episodes]

    @property
    def n_frames(self) -> int:
        return sum(int(e["n_frames"]) for e in self.episodes)

    def __len__(self) -> int:
        return self.n_frames

    def episode(self, episode_id: str) -> dict[str, Any]:
        try:
            return self._by_id[episode_id]
        except KeyError:
            raise KeyError(f"no episode {episode_id!r} in {self.root}") from None

    def shard_path(self, episode_id: str) -> Path:
        return self.root / self.episode(episode_id)["file"]

    def shards(self) -> list[Path]:
        return [self.root / e["file"] for e in self.episodes]

    def split(self, name: str) -> list[str]:
        """Episode ids of a split ('train', 'val' or 'test'); episodes that info.json does not
        list yet (a collection still running) are assigned by the same hash."""
        valid = [s for s, _ in SPLIT_FRACTIONS]
        if name not in valid:
            raise ValueError(f"split={name!r}; valid: {valid}")
        seed = int(self.info.get("split_seed", 0))
        listed = {e: s for s, ids in self.info.get("splits", {}).items() for e in ids}
        return [e for e in self.episode_ids if listed.get(e, split_of(e, seed)) == name]

    # ------------------------------------------------------------------ data
    def read_episode(self, episode_id: str, columns: Sequence[str] | None = None):
        """The episode's frames as a ``pyarrow.Table`` (optionally only ``columns``).

        Raises :class:`CorruptDataError` for a shard that cannot be read; with
        ``skip_corrupt`` returns ``None`` for it instead (counted in ``skipped``)."""
        path = self.shard_path(episode_id)
        try:
            return self._read_shard(path, columns, int(self.episode(episode_id)["n_frames"]))
        except CorruptDataError as exc:
            if not self.skip_corrupt:
                raise
            self.skipped.add(exc, rows=int(self.episode(episode_id)["n_frames"]),
                             whole_file=True, episode_id=episode_id)
            return None

    def _read_shard(self, path: Path, columns: Sequence[str] | None, n_frames: int):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise CorruptDataError(path, None, f"not a readable Parquet file: {exc}") from exc
        names = set(pf.schema_arrow.names)
        wanted = list(columns) if columns is not None else pf.schema_arrow.names
        missing = [c for c in wanted if c not in names]
        if missing:
            raise CorruptDataError(path, None, f"missing column(s) {missing}")
        tables, start = [], 0
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            try:
                tables.append(pf.read_row_group(g, columns=wanted))
            except (OSError, pa.ArrowException) as exc:
                raise CorruptDataError(
                    path, start, f"row group {g} (rows {start}-{start + n - 1}) unreadable: {exc}"
                ) from exc
            start += n
        if start != n_frames:
            raise CorruptDataError(
                path, min(start, n_frames), f"{start} rows, episodes.jsonl says {n_frames}"
            )
        table = pa.concat_tables(tables) if tables else pf.schema_arrow.empty_table()
        return table.select(wanted)

    def iter_frames(
        self,
        split: str | None = None,
        columns: Sequence[str] | None = None,
        decode_images: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """One dict per frame (column -> Python value), episode by episode.

        With ``decode_images`` every ``image.<camera>`` value is an (H, W, 3) uint8 array; an
        undecodable JPEG raises :class:`CorruptDataError` (or, with ``skip_corrupt``, drops
        that frame and counts it)."""
        ids = self.episode_ids if split is None else self.split(split)
        for eid in ids:
            table = self.read_episode(eid, columns)
            if table is None:
                continue
            path = self.shard_path(eid)
            image_cols = [c for c in table.column_names if c.startswith("image.")]
            for row, frame in enumerate(table.to_pylist()):
                if decode_images:
                    try:
                        for c in image_cols:
                            frame[c] = decode_jpeg(frame[c], path, row, c)
                    except CorruptDataError as exc:
                        if not self.skip_corrupt:
                            raise
                        self.skipped.add(exc, rows=1)
                        continue
                yield frame


def open_dataset(root: str | Path, skip_corrupt: bool = False) -> DemoDataset:
    """Open the dataset in ``root`` (a directory with ``meta/info.json``)."""
    return DemoDataset(root, skip_corrupt=skip_corrupt)
