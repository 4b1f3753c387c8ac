"""--use_cache in real lm-eval runs (in-process): every media form, several models, one file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TASKS_DIR

from lm_eval_patches.cache.store import AnswerStore, cache_file_for
from lm_eval_patches.media.forms import LOAD_SWITCHES

# One image, one audio and one video task.
TASKS = ["weird", "ruenvaqa", "commonvideoqa"]


@pytest.fixture(autouse=True)
def _no_env_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval's environment report (torch's collect_env, a pip subprocess) takes half of each
    small run here and plays no part in caching."""
    import lm_eval.evaluator

    monkeypatch.setattr(lm_eval.evaluator, "add_env_info", lambda storage: None)


def evaluate(tasks: list[str], cache: Path, model_args: str = "seed=1", limit: int = 2):
    """One simple_evaluate run with mera-baseline; (answers per task, cache counts per task)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from lm_eval_patches.cache import install

    results = lm_eval.simple_evaluate(
        model="mera-baseline",
        model_args=model_args,
        tasks=tasks,
        limit=limit,
        use_cache=str(cache),
        task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
        log_samples=True,
    )
    answers = {
        task: [s["resps"] for s in sorted(results["samples"][task], key=lambda s: s["doc_id"])]
        for task in tasks
    }
    return answers, install.LAST_RUN.caches[0].task_counts()


@pytest.mark.parametrize("mode", [None, *LOAD_SWITCHES])
def test_every_media_form_is_cached(
    mode: str | None, mera_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lazy refs and each LOAD_* form (PIL images and audio arrays with LOAD_OBJECT, bytes,
    data URLs, files) of image, audio and video tasks: stored, then answered from the file."""
    if mode:
        monkeypatch.setenv(mode, "1")
        monkeypatch.setenv("LM_EVAL_MEDIA_DIR", str(tmp_path / "media"))
    cache = tmp_path / "cache"
    first, counts = evaluate(TASKS, cache)
    assert {t: (c["computed"], c["from_cache"]) for t, c in counts.items()} == {
        t: (2, 0) for t in TASKS
    }
    assert AnswerStore(cache_file_for(cache)).count() == 2 * len(TASKS)
    again, counts = evaluate(TASKS, cache)
    assert again == first
    assert {t: (c["computed"], c["from_cache"]) for t, c in counts.items()} == {
        t: (0, 2) for t in TASKS
    }


def test_two_models_sharing_a_file_get_their_own_answers(mera_env: Path, tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    one, _ = evaluate(["weird"], cache, "seed=1", limit=6)
    two, _ = evaluate(["weird"], cache, "seed=2", limit=6)
    assert one != two  # the seeds draw different letters on these docs
    store = AnswerStore(cache_file_for(cache))
    assert store.count() == 12 and len(store.models()) == 2
    for args, expected in (("seed=1", one), ("seed=2", two)):
        answers, counts = evaluate(["weird"], cache, args, limit=6)
        assert answers == expected
        assert counts["weird"]["from_cache"] == 6 and counts["weird"]["computed"] == 0
