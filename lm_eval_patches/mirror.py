"""Download MERA datasets into the local mirror that ``MERA_DATA_DIR`` reads.

Layout: ``<out>/<org>/<Name>/`` holds the dataset repository's files exactly as the hub serves
them (README.md with its ``configs`` header, parquet files), which is what ``tasks/data.py`` loads
offline. Downloads go through ``huggingface_hub.snapshot_download`` (progress bars, retries, a
dropped connection resumed with a Range request, files already complete skipped on a re-run);
afterwards every file is verified against the repository tree (size, and the sha256 of LFS files
or the git blob id of small files). A file that fails is deleted, so the next run fetches it
again, and the dataset is reported as failed. ``<Name>/.mera-mirror.json`` records the commit
and the verified hashes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
MANIFEST = ".mera-mirror.json"


@dataclass
class MirrorResult:
    """What happened to one dataset: its commit, files verified, or the error."""

    repo_id: str
    folder: Path
    commit: str | None = None
    files: int = 0
    bytes: int = 0
    error: str | None = None
    bad_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _git_blob_id(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(folder: Path, tree: list) -> tuple[dict[str, str], list[str]]:
    """Check each tree entry (``RepoFile``) against the local copy.

    Returns ``({path: sha256}, [problems])``; a file that fails is deleted so that the next
    run downloads it again.
    """
    hashes: dict[str, str] = {}
    problems: list[str] = []
    for entry in tree:
        path = folder / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing after download")
            continue
        expected_size = entry.lfs.size if entry.lfs is not None else entry.size
        size = path.stat().st_size
        if size != expected_size:
            problems.append(f"{entry.path}: {size} bytes, the hub lists {expected_size}")
            path.unlink()
            continue
        sha256 = _sha256(path)
        if entry.lfs is not None:
            good = sha256 == entry.lfs.sha256
            detail = f"sha256 {sha256[:12]}, the hub lists {entry.lfs.sha256[:12]}"
        else:
            blob = _git_blob_id(path)
            good = blob == entry.blob_id
            detail = f"git blob {blob[:12]}, the hub lists {entry.blob_id[:12]}"
        if not good:
            problems.append(f"{entry.path}: {detail}")
            path.unlink()
            continue
        hashes[entry.path] = sha256
    return hashes, problems


def mirror_dataset(
    repo_id: str,
    out: Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    revision: str | None = None,
    max_workers: int = 4,
) -> MirrorResult:
    """Download one dataset repository into ``out/<repo_id>`` and verify it."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    folder = out / repo_id
    result = MirrorResult(repo_id, folder)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.dataset_info(repo_id, revision=revision)
        result.commit = info.sha
        tree = [
            entry
            for entry in api.list_repo_tree(
                repo_id, repo_type="dataset", revision=info.sha, recursive=True
            )
            if isinstance(entry, RepoFile)
        ]
        snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=info.sha,
            local_dir=folder,
            endpoint=endpoint,
            token=token,
            max_workers=max_workers,
        )
    except (GatedRepoError, RepositoryNotFoundError) as exc:
        hint = "" if token else " (private and gated sets need HF_TOKEN, with the terms accepted)"
        result.error = f"no access to {repo_id}{hint}: {_first_line(exc)}"
        return result
    except RevisionNotFoundError as exc:
        result.error = f"{repo_id}: revision {revision!r} not found: {_first_line(exc)}"
        return result
    except (HfHubHTTPError, OSError) as exc:
        result.error = f"{repo_id}: download failed ({_first_line(exc)}); run again to resume"
        return result
    hashes, problems = verify_files(folder, tree)
    result.files = len(hashes)
    result.bytes = sum((folder / p).stat().st_size for p in hashes)
    if problems:
        result.bad_files = problems
        result.error = (
            f"{repo_id}: {len(problems)} file(s) failed verification (deleted; run again): "
            + "; ".join(problems[:3])
        )
        return result
    manifest = {"repo_id": repo_id, "commit": info.sha, "endpoint": endpoint, "files": hashes}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return result


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def mirror_datasets(
    repo_ids: list[str],
    out: str | Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    revision: str | None = None,
    max_workers: int = 4,
) -> list[MirrorResult]:
    """Mirror each dataset in turn (one failing does not stop the others).

    Raises:
        ValueError: ``HF_HUB_OFFLINE`` is set (huggingface_hub would refuse every request).
    """
    from huggingface_hub import constants
    from tqdm import tqdm

    if constants.HF_HUB_OFFLINE:
        raise ValueError("mirroring needs the network: unset HF_HUB_OFFLINE for this command")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for repo_id in tqdm(repo_ids, desc="datasets", unit="dataset"):
        results.append(
            mirror_dataset(
                repo_id,
                out,
                endpoint=endpoint,
                token=token,
                revision=revision,
                max_workers=max_workers,
            )
        )
    return results
