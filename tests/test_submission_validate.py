"""`mera-mm validate` on broken archives (one per problem code) and on hostile zips.

A good archive is built from the fixture mirror's test ids; each case breaks one thing and
checks that its code, and only a problem of the right severity, is reported. Every code of
``codes.CODES`` must have a case here.
"""

from __future__ import annotations

import io
import json
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lm_eval_patches.cli import main as cli_main
from lm_eval_patches.submission.codes import CODES, ERROR, INCOMPLETE, WARNING
from lm_eval_patches.submission.expected import ExpectedIds
from lm_eval_patches.submission.safezip import SafeZip, unsafe_name
from lm_eval_patches.submission.table import LOGS_ZIP, SUBMISSION_DATASETS
from lm_eval_patches.submission.validate import validate_archive

SAMPLES = "samples_ruclevr_2026-11-29T12-00-00.jsonl"
RESULTS = "results_2026-11-29T12-00-00.json"


@pytest.fixture(scope="module")
def expected(mirror: Path) -> ExpectedIds:
    return ExpectedIds(mirror)


def zip_bytes(members: dict[str, bytes], extra: Callable[[zipfile.ZipFile], None] | None = None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
        if extra:
            extra(zipped)
    return buffer.getvalue()


def good_logs() -> bytes:
    return zip_bytes({SAMPLES: b'{"doc_id": 0}\n', RESULTS: b"{}"})


def good_members(expected: ExpectedIds) -> dict[str, bytes]:
    members = {LOGS_ZIP: good_logs()}
    for dataset in SUBMISSION_DATASETS:
        entries = [{"outputs": "A", "meta": {"id": i}} for i in expected.get(dataset)]
        members[dataset.file] = json.dumps({"data": {"test": entries}}).encode()
    return members


def with_file(members: dict, name: str, entries: list) -> dict:
    return {**members, name: json.dumps({"data": {"test": entries}}).encode()}


def patch_sizes(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the declared unpacked size of ``name`` (local and central headers)."""
    raw = bytearray(data)
    encoded = name.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (at := raw.find(signature, start)) >= 0:
            header = 30 if signature == b"PK\x03\x04" else 46
            if raw[at + header : at + header + len(encoded)] == encoded:
                struct.pack_into("<I", raw, at + offset, size)
            start = at + 4
    return bytes(raw)


def set_encrypted_flag(data: bytes, name: str) -> bytes:
    raw = bytearray(data)
    at = raw.find(b"PK\x01\x02" + b"\x00" * 0)
    while at >= 0:
        if raw[at + 46 : at + 46 + len(name)] == name.encode():
            struct.pack_into("<H", raw, at + 8, struct.unpack_from("<H", raw, at + 8)[0] | 1)
        at = raw.find(b"PK\x01\x02", at + 4)
    return bytes(raw)


def symlink(zipped: zipfile.ZipFile, name: str = "link.json", target: str = "/etc/passwd"):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zipped.writestr(info, target)


def duplicate(zipped: zipfile.ZipFile) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zipped.writestr("WEIRD.json", b'{"data": {"test": []}}')


def case_archive(code: str, members: dict[str, bytes]) -> bytes:
    """An archive showing problem ``code`` (every other part as in a good archive)."""
    first = SUBMISSION_DATASETS[0].file
    ids = [e["meta"]["id"] for e in json.loads(members["ruCLEVR.json"])["data"]["test"]]
    clevr = [{"outputs": "1", "meta": {"id": i}} for i in ids]
    cases: dict[str, Callable[[], bytes]] = {
        "MM101": lambda: b"this is not a zip archive",
        "MM102": lambda: zip_bytes({**members, "../escape.json": b"{}"}),
        "MM103": lambda: zip_bytes(members, symlink),
        "MM104": lambda: zip_bytes({**members, **{f"x{i}.json": b"" for i in range(1000)}}),
        "MM105": lambda: patch_sizes(zip_bytes(members), first, 3 << 30),
        "MM106": lambda: zip_bytes({**members, "zeros.json": bytes(3 << 20)}),
        "MM107": lambda: patch_sizes(zip_bytes(members), first, 10),
        "MM108": lambda: zip_bytes(members, duplicate),
        "MM109": lambda: set_encrypted_flag(zip_bytes(members), first),
        "MM201": lambda: zip_bytes({**members, "notes.txt": b"hi"}),
        "MM202": lambda: zip_bytes(
            {k if k != first else f"submission/{k}": v for k, v in members.items()}
        ),
        "MM203": lambda: zip_bytes(
            {k if k != "ruCLEVR.json" else "ruclevr.json": v for k, v in members.items()}
        ),
        "MM204": lambda: zip_bytes({k: v for k, v in members.items() if k != LOGS_ZIP}),
        "MM205": lambda: zip_bytes({**members, LOGS_ZIP: zip_bytes({RESULTS: b"{}"})}),
        "MM206": lambda: zip_bytes(
            {**members, LOGS_ZIP: zip_bytes({SAMPLES: b"{}", "secrets.txt": b"x"})}
        ),
        "MM207": lambda: zip_bytes({LOGS_ZIP: members[LOGS_ZIP]}),
        "MM301": lambda: zip_bytes({**members, "ruCLEVR.json": b"\xff\xfe not json"}),
        "MM302": lambda: zip_bytes({**members, "ruCLEVR.json": b'{"data": []}'}),
        "MM303": lambda: zip_bytes(
            with_file(members, "ruCLEVR.json", clevr + [{"outputs": 5, "meta": {"id": "x"}}])
        ),
        "MM304": lambda: zip_bytes(
            with_file(members, "ruCLEVR.json", [{**clevr[0], "outputs": " "}] + clevr[1:])
        ),
        "MM401": lambda: zip_bytes(with_file(members, "ruCLEVR.json", clevr + clevr[:1])),
        "MM402": lambda: zip_bytes(
            with_file(members, "ruCLEVR.json", clevr + [{"outputs": "1", "meta": {"id": 99999}}])
        ),
        "MM501": lambda: zip_bytes(with_file(members, "ruCLEVR.json", clevr[1:])),
        "MM502": lambda: zip_bytes({k: v for k, v in members.items() if k != "WEIRD.json"}),
    }
    return cases[code]()


# MM403 (ids not loadable) needs another data source; it has its own test below.
CASE_CODES = sorted(set(CODES) - {"MM403"})


def test_every_code_has_a_case_and_a_doc_line() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "submission.md").read_text()
    for code, entry in CODES.items():
        assert f"| `{code}` |" in doc, f"{code} is not documented in docs/submission.md"
        assert entry.severity in (ERROR, INCOMPLETE, WARNING)
    assert set(CASE_CODES) | {"MM403"} == set(CODES)


def test_good_archive_is_valid_and_complete(expected: ExpectedIds, tmp_path: Path) -> None:
    path = tmp_path / "good.zip"
    path.write_bytes(zip_bytes(good_members(expected)))
    report = validate_archive(path, expected=expected)
    assert report.problems == [] and report.complete and report.ok()
    assert len(report.checked) == 18


@pytest.mark.parametrize("code", CASE_CODES)
def test_broken_archive_reports_its_code(code: str, expected: ExpectedIds, tmp_path: Path):
    path = tmp_path / "broken.zip"
    path.write_bytes(case_archive(code, good_members(expected)))
    report = validate_archive(path, expected=expected)
    codes = {p.code for p in report.problems}
    assert code in codes, [str(p) for p in report.problems]
    severity = CODES[code].severity
    if severity == ERROR:
        assert not report.ok(allow_partial=True)
    else:  # incomplete or warning only: the rest of the archive is sound
        assert {CODES[c].severity for c in codes} <= {severity}, codes
        assert report.ok(allow_partial=True)
        assert report.ok() == (severity == WARNING)
    text = "\n".join(report.lines())
    assert code in text and CODES[code].summary in text


def test_ids_not_checkable_without_the_data(expected: ExpectedIds, tmp_path: Path) -> None:
    path = tmp_path / "good.zip"
    path.write_bytes(zip_bytes(good_members(expected)))
    empty = tmp_path / "no-data"
    empty.mkdir()
    report = validate_archive(path, data_dir=empty)  # not in the mirror; the hub is offline
    assert {p.code for p in report.problems} == {"MM403"}
    assert "ruCLEVR" in next(str(p) for p in report.problems if "ruCLEVR" in p.where)
    assert report.ok(allow_partial=True) and not report.ok()


def test_missing_list_and_cli_exit_status(
    expected: ExpectedIds, mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    members = good_members(expected)
    partial = {k: v for k, v in members.items() if k in (LOGS_ZIP, "ruCLEVR.json")}
    path = tmp_path / "partial.zip"
    path.write_bytes(zip_bytes(partial))
    assert cli_main(["validate", str(path), "--data", str(mirror)]) == 1
    out = capsys.readouterr().out
    assert "missing for a complete submission:" in out
    assert out.count("MM502") == 17 and "valid but PARTIAL: 1 of 18 datasets" in out
    assert cli_main(["validate", str(path), "--data", str(mirror), "--allow-partial"]) == 0


# -- hostile archives ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["../x.json", "/etc/x.json", "a/../../x.json", "C:/x.json", "c:x.json", "a\\..\\x"]
)
def test_unsafe_names(name: str) -> None:
    assert unsafe_name(name)


def test_hostile_members_are_never_unpacked(tmp_path: Path) -> None:
    """Traversal, absolute and symlink members, inside the archive and inside its logs zip:
    all refused, and nothing is written anywhere (the validator reads in memory only)."""
    inner = zip_bytes({SAMPLES: b"{}", "../../logs-escape": b"x"}, symlink)
    data = zip_bytes(
        {"../escape.json": b"{}", "/tmp/abs.json": b"{}", LOGS_ZIP: inner},
        lambda z: symlink(z, "ruCLEVR.json", "../../etc/passwd"),
    )
    work = tmp_path / "work"
    work.mkdir()
    path = work / "hostile.zip"
    path.write_bytes(data)
    before = sorted(tmp_path.rglob("*"))
    report = validate_archive(path, data_dir=tmp_path)
    assert sorted(tmp_path.rglob("*")) == before
    found = [(p.code, p.where) for p in report.problems]
    assert ("MM102", "hostile.zip: '../escape.json'") in found
    assert ("MM102", "hostile.zip: '/tmp/abs.json'") in found
    assert ("MM103", "hostile.zip: ruCLEVR.json") in found
    assert ("MM102", f"{LOGS_ZIP}: '../../logs-escape'") in found
    assert ("MM103", f"{LOGS_ZIP}: link.json") in found
    assert "ruCLEVR.json" not in report.checked


def test_bombs_by_declared_and_actual_size() -> None:
    zeros = zip_bytes({"bomb.json": bytes(50 << 20)})  # 50 MiB of zeros packs to ~50 KiB
    assert len(zeros) < 200_000
    ratio = SafeZip.open(zeros, "z.zip")
    assert [p.code for p in ratio.problems] == ["MM106"] and not ratio.files

    declared = SafeZip.open(patch_sizes(zip_bytes({"a.json": b"{}"}), "a.json", 3 << 30), "z")
    assert [p.code for p in declared.problems] == ["MM105"]

    # A header that under-declares: the stream is cut at the cap, never unpacked in full.
    liar = patch_sizes(zip_bytes({"a.json": b"0123456789" * 100_000}), "a.json", 10)
    with SafeZip.open(liar, "z") as zipped:
        assert zipped.read("a.json") is None
        assert [p.code for p in zipped.problems] == ["MM107"]

    many = zip_bytes({f"{i}.json": b"" for i in range(1001)})
    assert [p.code for p in SafeZip.open(many, "z").problems] == ["MM104"]


def test_without_a_mirror_and_hub_ids_are_not_checked_at_once(
    expected: ExpectedIds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No mirror and no hub (offline here): one quick probe, every dataset reported as not
    checked with what to do (never hours of retries, never called missing)."""
    import huggingface_hub.constants

    monkeypatch.delenv("MERA_DATA_DIR", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    path = tmp_path / "good.zip"
    path.write_bytes(zip_bytes(good_members(expected)))
    report = validate_archive(path, expected=ExpectedIds(None))
    assert {p.code for p in report.problems} == {"MM403"}
    assert all("set MERA_DATA_DIR" in p.detail for p in report.problems)
    text = "\n".join(report.lines())
    assert "missing for a complete submission" not in text
    assert text.splitlines()[-1].startswith("valid, but test ids NOT checked for 18 dataset(s)")
