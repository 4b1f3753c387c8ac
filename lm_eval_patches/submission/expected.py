"""The test ids of each dataset, read from the data the runs use: the local mirror
(``MERA_DATA_DIR``, or ``--data``) when it holds the dataset, else the Hugging Face Hub, through
the project's own loader (``tasks.data.load_source``). Every config's test split counts: one
dataset is one id space across its configs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from lm_eval_patches.submission.table import SubmissionDataset


@contextlib.contextmanager
def mirror_root(data_dir: str | Path | None) -> Iterator[None]:
    """Point ``MERA_DATA_DIR`` at ``data_dir`` for the duration (no change when None)."""
    if data_dir is None:
        yield
        return
    saved = os.environ.get("MERA_DATA_DIR")
    os.environ["MERA_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MERA_DATA_DIR", None)
        else:
            os.environ["MERA_DATA_DIR"] = saved


def _configs(dataset: SubmissionDataset) -> list[str | None]:
    import datasets

    from lm_eval_patches.tasks.data import mirror_path

    local = mirror_path(dataset.hub_path)
    names = datasets.get_dataset_config_names(str(local) if local else dataset.hub_path)
    return [None] if names in ([], ["default"]) else list(names)


def dataset_test_ids(dataset: SubmissionDataset) -> list[int]:
    """Every ``meta.id`` of the dataset's test split(s), in data order. Raises whatever the
    loader raises (``DatasetSourceError`` names the dataset and what to do)."""
    from lm_eval_patches.tasks.data import load_source

    ids: list[int] = []
    for config in _configs(dataset):
        splits = load_source(f"validate {dataset.file}", dataset.hub_path, config)
        if "test" not in splits:
            raise ValueError(f"{dataset.hub_path} config {config}: no test split")
        metas = splits["test"].select_columns(["meta"])
        ids.extend(int(row["meta"]["id"]) for row in metas)
    return ids


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot serve the test ids (offline mode, or no answer from its
    endpoint within a few seconds), or None when it answers. One quick probe, so a machine
    without network learns it at once instead of after every dataset's retries."""
    import huggingface_hub.constants
    import requests

    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    endpoint = huggingface_hub.constants.ENDPOINT
    try:
        requests.head(endpoint, timeout=5)
    except requests.RequestException as exc:
        return f"{endpoint} did not answer ({type(exc).__name__})"
    return None


class ExpectedIds:
    """Test ids per dataset, loaded once each; ``errors`` keeps why a dataset could not be."""

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = data_dir
        self._ids: dict[str, list[int] | None] = {}
        self.errors: dict[str, str] = {}
        self._hub_problem: str | None = None
        self._hub_probed = False

    def _hub_is_down(self, dataset: SubmissionDataset) -> str | None:
        """When the dataset would come from the hub and the hub cannot serve it: the reason."""
        from lm_eval_patches.tasks.data import mirror_path

        with mirror_root(self.data_dir):
            if mirror_path(dataset.hub_path) is not None:
                return None
        if not self._hub_probed:
            self._hub_probed, self._hub_problem = True, hub_unreachable()
        return self._hub_problem

    def get(self, dataset: SubmissionDataset) -> list[int] | None:
        """The dataset's test ids, or None (reason in ``errors``) when they cannot be loaded."""
        if dataset.file not in self._ids:
            down = self._hub_is_down(dataset)
            if down:
                self._ids[dataset.file] = None
                self.errors[dataset.file] = (
                    f"no local mirror holds it and the hub cannot be asked ({down}); pass "
                    "--data DIR or set MERA_DATA_DIR to the mirror the runs used"
                )
                return None
            try:
                with mirror_root(self.data_dir):
                    self._ids[dataset.file] = dataset_test_ids(dataset)
            except Exception as exc:  # noqa: BLE001 - any loader failure: report, go on
                self._ids[dataset.file] = None
                self.errors[dataset.file] = f"{type(exc).__name__}: {exc}"
        return self._ids[dataset.file]
