"""MeraCachingLM around a backend: per-answer storing, ambiguous reports, failures, sampling."""

from __future__ import annotations

from pathlib import Path

from lm_eval.api.instance import Instance

from lm_eval_patches.cache.caching_lm import MeraCachingLM, report_answer
from lm_eval_patches.cache.store import AnswerStore
from lm_eval_patches.failures import FAILURES
from lm_eval_patches.media.ref import MediaRef

GEN = {"until": ["\n"], "max_gen_toks": 4, "do_sample": False}


def request(text: str, media: bytes | None = None, doc_id: int = 0, gen=GEN) -> Instance:
    aux = {"visual": [MediaRef.from_bytes("image", media)]} if media else {}
    return Instance(
        request_type="generate_until",
        doc={"meta": {"id": 100 + doc_id}},
        arguments=(text, dict(gen), aux),
        idx=0,
        metadata=("fake_task", doc_id, 1),
    )


class ReportingLM:
    """A backend that reports each answer through lm-eval's ``add_partial`` (text and settings
    only, as upstream backends do) and notes how many answers the file held at each report."""

    def __init__(self, cache_file: Path, fail: set[str] = frozenset(), exact: bool = False):
        self.cache_file, self.fail, self.exact = cache_file, fail, exact
        self.cache_hook = None
        self.asked: list[str] = []
        self.stored_at_report: list[int] = []

    def set_cache_hook(self, hook) -> None:
        self.cache_hook = hook

    def generate_until(self, requests: list) -> list:
        answers = []
        for req in requests:
            text, media = req.args[0], req.args[2].get("visual")
            self.asked.append(text)
            if text in self.fail:
                answers.append(FAILURES.record(req.task_name, str(req.doc_id), "server said no"))
                continue
            answer = f"{text}/{media[0].sha256[:6] if media else '-'}"
            if self.exact:
                report_answer(self, "generate_until", req, answer)
            else:
                self.cache_hook.add_partial("generate_until", req.args[:2], answer)
            self.stored_at_report.append(AnswerStore(self.cache_file).count())
            answers.append(answer)
        return answers


def wrap(lm: ReportingLM, tmp_path: Path) -> MeraCachingLM:
    return MeraCachingLM(lm, str(tmp_path / "c_rank0.db"), backend="fake", model_args="m=1")


def test_each_answer_is_on_disk_when_reported(tmp_path: Path) -> None:
    lm = ReportingLM(tmp_path / "c.sqlite")
    reqs = [request(f"q{i}", bytes([i]) * 50, i) for i in range(4)]
    first = wrap(lm, tmp_path).generate_until(reqs)
    assert lm.stored_at_report == [1, 2, 3, 4]  # not at the end of the batch
    lm2 = ReportingLM(tmp_path / "c.sqlite")
    assert wrap(lm2, tmp_path).generate_until(reqs) == first and lm2.asked == []


def test_same_text_with_different_media_is_never_mixed_up(tmp_path: Path) -> None:
    """add_partial cannot tell these apart: stored when the batch returns, each its own."""
    lm = ReportingLM(tmp_path / "c.sqlite")
    reqs = [request("same question", bytes([i]) * 50, i) for i in range(3)]
    first = wrap(lm, tmp_path).generate_until(reqs)
    assert lm.stored_at_report == [0, 0, 0]
    assert len(set(first)) == 3
    lm2 = ReportingLM(tmp_path / "c.sqlite")
    assert wrap(lm2, tmp_path).generate_until(list(reversed(reqs))) == first[::-1]
    assert lm2.asked == []


def test_exact_reports_are_stored_at_once_even_for_equal_texts(tmp_path: Path) -> None:
    lm = ReportingLM(tmp_path / "c.sqlite", exact=True)
    reqs = [request("same question", bytes([i]) * 50, i) for i in range(3)]
    wrap(lm, tmp_path).generate_until(reqs)
    assert lm.stored_at_report == [1, 2, 3]


def test_failed_answers_are_never_stored(tmp_path: Path) -> None:
    lm = ReportingLM(tmp_path / "c.sqlite", fail={"q1"})
    reqs = [request(f"q{i}", None, i) for i in range(3)]
    cached = wrap(lm, tmp_path)
    cached.generate_until(reqs)
    assert AnswerStore(tmp_path / "c.sqlite").count() == 2
    assert cached.task_counts()["fake_task"] == {
        "from_cache": 0,
        "computed": 2,
        "failed": 1,
        "not_cached": 0,
    }
    lm2 = ReportingLM(tmp_path / "c.sqlite")
    wrap(lm2, tmp_path).generate_until(reqs)
    assert lm2.asked == ["q1"]  # only the failed one is asked again


def test_sampled_generations_are_not_cached(tmp_path: Path) -> None:
    sampled = {**GEN, "do_sample": True, "temperature": 0.7}
    reqs = [request("q", None, 0, gen=sampled)]
    wrap(ReportingLM(tmp_path / "c.sqlite"), tmp_path).generate_until(reqs)
    lm2 = ReportingLM(tmp_path / "c.sqlite")
    wrap(lm2, tmp_path).generate_until(reqs)
    assert lm2.asked == ["q"]
