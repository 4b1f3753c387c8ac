"""Reading an untrusted zip (a submission archive or its logs_public.zip) without trusting it.

Every member is checked from the central directory before a byte is unpacked: names (no absolute
paths, ``..``, drive letters or backslashes), kinds (regular files only: no symlinks), count,
encryption, declared sizes and compression ratio. Reading then streams with a hard cap, so a
member whose header under-declares its size (or whose CRC is wrong) is caught, not unpacked.
Nothing is ever extracted to disk. Problems are reported with codes from ``codes``.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_patches.submission.codes import Problem

CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    """Bounds for one zip. Sizes in bytes. A member larger than ``ratio_floor`` whose unpacked
    size exceeds ``max_ratio`` times its packed size is treated as a bomb (JSON text packs at
    roughly 5-20x; DEFLATE tops out near 1030x)."""

    max_members: int = 1000
    max_member_bytes: int = 2 << 30
    max_total_bytes: int = 8 << 30
    max_ratio: int = 200
    ratio_floor: int = 1 << 20


def unsafe_name(name: str) -> bool:
    """True for names that could escape a folder they were unpacked into."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/"):
        return True
    if len(name) > 1 and name[1] == ":":  # C:foo, C:/foo
        return True
    return any(part == ".." for part in name.split("/"))


def _kind_problem(info: zipfile.ZipInfo) -> str | None:
    kind = stat.S_IFMT(info.external_attr >> 16)
    if not kind:
        return None  # no file type recorded (Windows tools, zipfile.writestr): a plain file
    if stat.S_ISLNK(kind):
        return "a symlink"
    if kind not in (stat.S_IFREG, stat.S_IFDIR):
        return f"file type {stat.filemode(kind)[0]!r}"
    return None


@dataclass
class SafeZip:
    """The checked members of one zip; ``problems`` lists what was refused and why."""

    where: str  # how problems name this zip, e.g. "submission.zip" or "logs_public.zip"
    limits: ZipLimits = field(default_factory=ZipLimits)
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, zipfile.ZipInfo] = field(default_factory=dict)  # safe regular files
    folders: list[str] = field(default_factory=list)  # directory entries (names end in "/")
    _zip: zipfile.ZipFile | None = None
    _handle: io.IOBase | None = None

    @classmethod
    def open(
        cls, source: str | Path | bytes, where: str, limits: ZipLimits | None = None
    ) -> SafeZip:
        """Open and check ``source`` (a path or the bytes of a zip). Never raises for bad input:
        an unreadable zip is an ``MM101`` problem and no members."""
        checked = cls(where, limits or ZipLimits())
        try:
            handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
        except OSError as exc:
            checked._problem("MM101", where, str(exc))
            return checked
        checked._handle = handle
        try:
            checked._zip = zipfile.ZipFile(handle)
            infos = checked._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            checked.close()
            checked._problem("MM101", where, str(exc))
            return checked
        checked._check(infos)
        return checked

    def close(self) -> None:
        """Close the zip and the file it was read from."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _problem(self, code: str, member: str, detail: str = "") -> None:
        where = self.where if member == self.where else f"{self.where}: {member}"
        self.problems.append(Problem(code, where, detail))

    def _check(self, infos: list[zipfile.ZipInfo]) -> None:
        limits = self.limits
        if len(infos) > limits.max_members:
            # Refuse the lot: a member-count bomb is not worth walking.
            self._problem("MM104", self.where, f"{len(infos)} > {limits.max_members}")
            return
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            if name in seen:
                self._problem("MM108", name)
                self.files.pop(name, None)
                continue
            seen.add(name)
            if unsafe_name(name):
                self._problem("MM102", repr(name))
                continue
            kind = _kind_problem(info)
            if kind:
                self._problem("MM103", name, kind)
                continue
            if info.is_dir():
                self.folders.append(name)
                continue
            if info.flag_bits & 0x1:
                self._problem("MM109", name)
                continue
            total += info.file_size
            if info.file_size > limits.max_member_bytes:
                self._problem("MM105", name, f"{info.file_size} bytes > {limits.max_member_bytes}")
                continue
            packed = max(info.compress_size, 1)
            if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * packed:
                self._problem(
                    "MM106", name, f"{info.file_size} bytes from {info.compress_size} packed"
                )
                continue
            self.files[name] = info
        if total > limits.max_total_bytes:
            self._problem("MM105", self.where, f"{total} bytes in all > {limits.max_total_bytes}")
            self.files.clear()

    def read(self, name: str) -> bytes | None:
        """The bytes of a checked member, or None (with an ``MM107`` problem) when it unpacks
        to more than it declares or fails its CRC."""
        return self._stream(name, keep=True)

    def verify(self, name: str) -> bool:
        """Unpack a checked member into nothing, with the same cap as ``read``; True if sound."""
        return self._stream(name, keep=False) is not None

    def _stream(self, name: str, keep: bool) -> bytes | None:
        info = self.files.get(name)
        if info is None or self._zip is None:
            return None
        out, size = bytearray(), 0
        try:
            with self._zip.open(info) as member:
                while chunk := member.read(CHUNK):
                    size += len(chunk)
                    if size > info.file_size:
                        self._problem("MM107", name, f"over the declared {info.file_size} bytes")
                        return None
                    if keep:
                        out += chunk
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
            self._problem("MM107", name, str(exc))
            return None
        if size != info.file_size:
            self._problem("MM107", name, f"{size} bytes, declared {info.file_size}")
            return None
        return bytes(out)
