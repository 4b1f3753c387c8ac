"""Read a MERA dataset folder, in either layout, as plain items with their media bytes.

Source layout (MERA's ``dataset_formatting`` rules): ``test.json`` = ``{"access", "data": [...]}``,
``shots.json`` = ``{"data": [...]}``, media under ``samples/`` named in ``inputs`` by relative path,
``instruction`` either the prompt text or an index into ``raw_dataset_meta.json``'s ``prompts``;
a dataset with domains has one such folder per domain.

Hub layout (what ``mera-mm fixtures`` and ``mera-mm mirror`` write): a ``README.md`` whose YAML
header lists ``configs`` with ``data_files`` per split, and parquet files whose media cells are
``{"bytes", "path"}`` structs typed ``Image``/``Audio``/``Video`` in the HF features metadata.
Row groups are read one batch at a time, so a large dataset is never held in memory whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPLITS = ("shots", "test")
MEDIA_KEY_RE = re.compile(r"^(image|audio|video)(?:_(\d+))?$")
MEDIA_EXTENSIONS = {
    "image": (".png", ".jpg", ".jpeg"),
    "audio": (".wav", ".mp3", ".flac", ".ogg"),
    "video": (".mp4", ".mov", ".webm", ".mkv", ".avi"),
}


class DatasetLayoutError(ValueError):
    """The folder is not a MERA dataset in either layout (says what was expected)."""


@dataclass
class MediaCell:
    """One media value of a record: its ``inputs`` key, kind, stored name and bytes."""

    field: str
    kind: str
    name: str | None
    data: bytes | None
    problem: str | None = None  # why the bytes could not be read (missing file, no bytes)


@dataclass
class Item:
    """One record of one split (and config), media split off into ``media``."""

    split: str
    config: str | None
    index: int
    record: dict[str, Any]
    media: list[MediaCell] = field(default_factory=list)

    @property
    def doc_id(self) -> Any:
        """``meta.id`` when the record has one, else None."""
        meta = self.record.get("meta")
        return meta.get("id") if isinstance(meta, dict) else None

    def where(self, field_name: str | None = None) -> dict[str, Any]:
        """Location keywords for ``Report.add``."""
        return {
            "split": self.split,
            "config": self.config,
            "doc_id": self.doc_id if self.doc_id is not None else f"#{self.index}",
            "field": field_name,
        }


@dataclass
class DatasetSource:
    """A dataset folder, its layout and what the layout says about access and prompts."""

    root: Path
    layout: str  # "source" or "hub"
    configs: dict[str | None, Path | dict[str, list[Path]]]
    access: str | None = None
    prompts: list[str] | None = None
    media_kinds: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The dataset's name: its folder's."""
        return self.root.name


def media_kind(key: str) -> str | None:
    """``image``/``audio``/``video`` for a media key of ``inputs`` (``audio_2`` too), else None."""
    match = MEDIA_KEY_RE.match(key)
    return match.group(1) if match else None


def _is_dataset(folder: Path) -> bool:
    """A source-layout dataset (``test.json``, or domain folders holding one) or a hub-layout
    one (a ``README.md`` with parquet files beneath it)."""
    if (folder / "test.json").is_file():
        return True
    children = [p for p in folder.iterdir() if p.is_dir()]
    if any((p / "test.json").is_file() for p in children):
        return True
    return (folder / "README.md").is_file() and next(folder.rglob("*.parquet"), None) is not None


def dataset_folders(root: str | Path) -> list[Path]:
    """``root`` when it is one dataset; else the datasets under it, one or two levels down (a
    mirror such as ``MERA_DATA_DIR`` holds ``ORG/NAME`` folders), so each is checked on its
    own (ids, balance and duplicates are per dataset). ``[root]`` when nothing is found."""
    root = Path(root)
    if not root.is_dir() or _is_dataset(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if _is_dataset(child):
            found.append(child)
        else:
            found += [g for g in sorted(child.iterdir()) if g.is_dir() and _is_dataset(g)]
    return found or [root]


def open_dataset(root: str | Path, access: str | None = None) -> DatasetSource:
    """Detect the layout of ``root`` and describe it.

    Raises:
        DatasetLayoutError: neither ``test.json`` (source) nor a ``README.md`` with ``configs``
            or parquet files (hub) is found.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"{root} is not a folder")
    if (root / "test.json").is_file():
        return _source(root, {None: root}, access)
    domains = sorted(p for p in root.iterdir() if (p / "test.json").is_file())
    if domains:
        return _source(root, {p.name: p for p in domains}, access)
    if list(root.rglob("*.parquet")):
        return _hub(root, access)
    raise DatasetLayoutError(
        f"{root}: no test.json (source layout) and no parquet files (hub layout) found"
    )


def _source(root: Path, configs: dict, access: str | None) -> DatasetSource:
    prompts = None
    meta_file = root / "raw_dataset_meta.json"
    if meta_file.is_file():
        prompts = json.loads(meta_file.read_text(encoding="utf-8")).get("prompts")
    declared = set()
    for folder in configs.values():
        declared.add(_read_json(folder / "test.json").get("access"))
    declared.discard(None)
    found = declared.pop() if len(declared) == 1 else None
    return DatasetSource(root, "source", configs, access or found, prompts)


def _front_matter(readme: Path) -> tuple[dict, str]:
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end > 0:
            return yaml.safe_load(text[3:end]) or {}, text[end + 4 :]
    return {}, text


def _hub(root: Path, access: str | None) -> DatasetSource:
    header, body = _front_matter(root / "README.md")
    configs: dict[str | None, dict[str, list[Path]]] = {}
    for entry in header.get("configs") or []:
        files: dict[str, list[Path]] = {}
        for data_file in entry.get("data_files") or []:
            patterns = data_file["path"]
            patterns = [patterns] if isinstance(patterns, str) else patterns
            files[data_file["split"]] = sorted(p for pat in patterns for p in root.glob(pat))
        configs[entry.get("config_name")] = files
    if not configs:  # no header: the hub's default ``<split>-*.parquet`` naming
        files = {s: sorted(root.rglob(f"{s}-*.parquet")) for s in SPLITS}
        configs["default"] = files
    if len(configs) == 1 and "default" in configs:
        configs = {None: configs["default"]}
    found = re.search(r"^\s*access:\s*(public|private)\b", body, re.I | re.M)
    declared = found.group(1).lower() if found else None
    return DatasetSource(root, "hub", configs, access or declared)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise DatasetLayoutError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("data", []), list):
        raise DatasetLayoutError(f'{path}: expected {{"data": [...]}} at the top level')
    return data


def iter_items(source: DatasetSource) -> Iterator[Item]:
    """Every record of every config and split (shots first), with its media bytes."""
    for config, where in source.configs.items():
        for split in SPLITS:
            if source.layout == "source":
                yield from _source_items(source, config, where, split)
            else:
                yield from _hub_items(source, config, where.get(split, []), split)


def _source_items(source: DatasetSource, config, folder: Path, split: str) -> Iterator[Item]:
    data = _read_json(folder / f"{split}.json").get("data", [])
    for index, record in enumerate(data):
        record = dict(record) if isinstance(record, dict) else {"_not_a_dict": record}
        inputs = record.get("inputs")
        cells = []
        if isinstance(inputs, dict):
            inputs = dict(inputs)
            for key, value in list(inputs.items()):
                kind = media_kind(key)
                if kind is None and isinstance(value, str) and value.startswith("samples/"):
                    inputs[key] = {"path": value}  # a media file under a text name: flagged
                if kind is None or value is None:
                    continue
                cells.append(_file_cell(folder, source.root, key, kind, value))
                inputs[key] = {"path": value}
            record["inputs"] = inputs
        yield Item(split, config, index, record, cells)


def _file_cell(folder: Path, root: Path, key: str, kind: str, value: Any) -> MediaCell:
    if not isinstance(value, str):
        return MediaCell(key, kind, None, None, f"expected a file path, got {type(value).__name__}")
    for base in (folder, root):
        path = base / value
        if path.is_file():
            return MediaCell(key, kind, value, path.read_bytes())
    return MediaCell(key, kind, value, None, f"file {value} not found under {folder}")


def _hub_items(source: DatasetSource, config, files: list[Path], split: str) -> Iterator[Item]:
    import pyarrow.parquet as pq

    index = 0
    for path in files:
        parquet = pq.ParquetFile(path)
        kinds = _hub_media_kinds(parquet.schema_arrow)
        source.media_kinds.update(kinds)
        for batch in parquet.iter_batches(batch_size=32):
            for record in batch.to_pylist():
                inputs = record.get("inputs")
                cells = []
                if isinstance(inputs, dict):
                    for key, value in inputs.items():
                        kind = kinds.get(key) or media_kind(key)
                        if kind is None or value is None:
                            continue
                        cells.append(_hub_cell(key, kind, value))
                        inputs[key] = {"path": (value or {}).get("path")}
                yield Item(split, config, index, record, cells)
                index += 1


def _hub_cell(key: str, kind: str, value: Any) -> MediaCell:
    if not isinstance(value, dict):
        return MediaCell(key, kind, None, None, "not a {bytes, path} media cell")
    data, name = value.get("bytes"), value.get("path")
    if not data:
        return MediaCell(key, kind, name, None, "the cell stores no bytes")
    return MediaCell(key, kind, name, data)


def _hub_media_kinds(schema) -> dict[str, str]:
    """``{inputs key: kind}`` from the HF features stored in the parquet metadata."""
    import datasets

    try:
        features = datasets.Features.from_arrow_schema(schema)
    except Exception:  # noqa: BLE001 - no or foreign metadata: fall back to key names
        return {}
    inputs = features.get("inputs")
    kinds = {}
    if isinstance(inputs, dict):
        for key, feature in inputs.items():
            for cls, kind in (
                (datasets.Image, "image"),
                (datasets.Audio, "audio"),
                (datasets.Video, "video"),
            ):
                if isinstance(feature, cls):
                    kinds[key] = kind
    return kinds
