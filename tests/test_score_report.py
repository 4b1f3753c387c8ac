"""`mera-mm score` (exact re-scoring, the judge score) and `mera-mm report` on real CLI runs."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import TASKS_DIR, run_cli
from judge_server import API_KEY, JudgeServer, behaviour, true_verdict

pytestmark = pytest.mark.slow

TASKS = "ruslun,ruhhh_image,runaturalsciencevqa,ruclevr,rucommonvqa,commonvideoqa,ruenvaqa"


def _lm_eval(mirror: Path, out: Path, model_args: str, *extra: str) -> Path:
    run_cli(
        [
            "--model",
            "mera-baseline",
            "--model_args",
            model_args,
            "--include_path",
            str(TASKS_DIR),
            "--tasks",
            TASKS,
            "--log_samples",
            "--output_path",
            str(out),
            *extra,
        ],
        {"MERA_DATA_DIR": str(mirror)},
    )
    return out


@pytest.fixture(scope="module")
def runs(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real lm-eval runs: the baseline, and a differently seeded "other-model" run with
    --predict_only (lm-eval computes no metric then; the report scores its logs)."""
    root = tmp_path_factory.mktemp("runs")
    first = _lm_eval(mirror, root / "baseline", "model=mera-baseline,seed=1234")
    second = _lm_eval(mirror, root / "other", "model=other-model,seed=7", "--predict_only")
    return first, second


def _files(run: Path) -> tuple[dict, Path]:
    (results,) = run.rglob("results_*.json")
    return json.loads(results.read_text()), results.parent


def _score(run: Path, *extra: str, expect: int = 0) -> dict:
    """``mera-mm score`` in this process (the lm-eval runs above are the real CLI)."""
    from lm_eval_patches.cli import main

    status = main(["score", str(run), "--include_path", str(TASKS_DIR), *extra])
    assert status == expect
    (scores,) = run.rglob("scores_*.json")
    return json.loads(scores.read_text())


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_score_reproduces_the_runs_metrics_exactly(runs: tuple[Path, Path], tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    results, _ = _files(run)
    scored = _score(run)
    assert scored["mera_score"]["changed_from_run"] == []
    for section in ("results", "groups"):
        for task, entry in results[section].items():
            for key, value in entry.items():
                assert _equal(scored[section][task][key], value), (section, task, key)
    # The ones the brief names: ruSLUn, ruHHH group EM, a size-weighted science group.
    assert "intent_em,scoring" in scored["results"]["ruslun"]
    assert "group_exact_match,none" in scored["results"]["ruhhh_image"]
    assert scored["groups"]["runaturalsciencevqa"]["exact_match,none"] == pytest.approx(
        results["groups"]["runaturalsciencevqa"]["exact_match,none"]
    )


def test_score_scores_the_raw_responses_again(runs: tuple[Path, Path], tmp_path: Path):
    """The logged raw answers go through the task's filters and metric again (not copied)."""
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    _, folder = _files(run)
    (path,) = folder.glob("samples_ruclevr_*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    wrong = [r for r in rows if r["exact_match"] == 0]
    for row in wrong:
        row["resps"] = [[f"  {row['doc']['outputs']}"]]  # right after normalisation only
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    scored = _score(run)["results"]["ruclevr"]
    n = len(rows)
    assert scored["exact_match,none"] == pytest.approx((n - len(wrong)) / n)  # parity: no strip
    assert scored["exact_match_norm,none"] == pytest.approx(1.0)
    changed = _score(run)["mera_score"]["changed_from_run"]
    assert any("ruclevr exact_match_norm,none" in line for line in changed)


def _judge_messages(run: Path) -> Counter:
    """User messages of every item the judge should see (EM tasks, gold present)."""
    from lm_eval_patches.judge import JudgeItem
    from lm_eval_patches.judge_scores import doc_question
    from lm_eval_patches.metrics import parse_golds

    asked: Counter = Counter()
    for path in run.rglob("samples_*.jsonl"):
        if "ruslun" in path.name:
            continue
        for line in path.read_text().splitlines():
            row = json.loads(line)
            golds = tuple(g for g in parse_golds(row["doc"]["outputs"]) if g.strip())
            item = JudgeItem(doc_question(row["doc"]), golds, row["resps"][0][0])
            asked[item.messages()[1]["content"]] += 1
    return asked


def test_judge_score_counts_errors_and_nonsense_and_caches(
    runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    cache = tmp_path / "verdicts.sqlite"
    args = ["--judge_model", "judge-1", "--judge_cache", str(cache), "--judge_max_retries", "2"]
    monkeypatch.setenv("MERA_JUDGE_API_KEY", API_KEY)  # read when scoring, not at import
    with JudgeServer() as server:
        scored = _score(run, "--judge_url", server.url, *args, expect=1)
        first_hits = sum(server.hits.values())
        # Every item the judge saw, with its multiplicity: the test's expectation of the scores.
        asked = _judge_messages(run)
        assert set(asked) == set(server.answered)
        expected_fail = sum(n for u, n in asked.items() if behaviour(u) != "verdict")
        verdicts = [
            true_verdict(u) for u, n in asked.items() if behaviour(u) == "verdict" for _ in range(n)
        ]
        again = _score(run, "--judge_url", server.url, *args, expect=1)
        second_hits = sum(server.hits.values()) - first_hits
    judge = scored["mera_score"]["judge"]
    assert judge["model"] == "judge-1" and judge["url"] == server.url
    assert "prompt_version" in judge and API_KEY not in json.dumps(scored)
    assert judge["failed"] == expected_fail > 0
    assert server.unauthorised == 0
    tasks = judge["tasks"]
    assert "ruslun" not in tasks  # intent EM / slot F1 only, as in MERA
    judged = sum(t["judged"] for t in tasks.values())
    assert judged == len(verdicts) > 0
    assert sum(t["failed"] for t in tasks.values()) == expected_fail
    # judge_score is the mean of the parsed verdicts only (errors/nonsense are not 0 or 1).
    total = sum(
        scored["results"][t]["judge_score,none"] * scored["results"][t]["judge_score_count,none"]
        for t in tasks
    )
    assert total == pytest.approx(sum(verdicts))
    per_doc = [v for task in judge["verdicts"].values() for v in task.values()]
    assert per_doc.count("failed") == expected_fail and sorted(
        v for v in per_doc if v != "failed"
    ) == sorted(verdicts)
    assert "group_judge_score,none" in scored["results"]["ruhhh_image"]
    assert "judge_score,none" in scored["groups"]["runaturalsciencevqa"]
    # Re-scoring asks only what failed before; parsed verdicts come from the cache.
    assert sum(t["from_cache"] for t in again["mera_score"]["judge"]["tasks"].values()) == judged
    assert 0 < second_hits < first_hits
    assert again["results"]["ruclevr"]["judge_score,none"] == pytest.approx(
        scored["results"]["ruclevr"]["judge_score,none"], nan_ok=True
    )
    # The report shows each item's verdict beside its answer.
    from lm_eval_patches.cli import main

    page = tmp_path / "judged.html"
    argv = ["report", str(run), "-o", str(page), "--include_path", str(TASKS_DIR), "--no_media"]
    assert main(argv) == 0
    text = page.read_text()
    data = json.loads(text.split('type="application/json">')[1].split("</script>")[0])
    shown = [s["judge"][0] for s in data["samples"] if s["task"] != "ruslun"]
    assert sorted(map(str, shown)) == sorted(map(str, per_doc))
    assert "JS " in text  # the task table's judge column


def test_score_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lm_eval_patches.cli import main

    assert main(["score", str(tmp_path), "--include_path", str(TASKS_DIR)]) == 2
    assert "no results_<date>.json" in capsys.readouterr().err
    (tmp_path / "results_2025-01-01T00-00-00.json").write_text("{}")
    assert main(["score", str(tmp_path), "--include_path", str(TASKS_DIR)]) == 2
    assert "--log_samples" in capsys.readouterr().err


def test_report_in_a_real_browser(runs: tuple[Path, Path], mirror: Path, tmp_path: Path):
    """The report opens from disk in Debian's chromium: tables, chart, media, filters, paging."""
    from playwright.sync_api import sync_playwright

    from lm_eval_patches.metrics import em_parity

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is missing: `make test` installs it (apt-get install chromium)"
    report = tmp_path / "report.html"
    run_cli(
        ["report", str(runs[0]), str(runs[1]), "-o", str(report), "--include_path", str(TASKS_DIR)],
        {"MERA_DATA_DIR": str(mirror)},
        program="mera-mm",
    )
    html = report.read_text()
    assert "http://" not in html.replace("http://www.w3.org", "")  # nothing fetched from outside
    samples = {}
    for run in runs:
        for path in run.rglob("samples_ruhhh_image_*.jsonl"):
            samples[run.name] = [json.loads(x) for x in path.read_text().splitlines()]
    n_ruhhh = len(samples["baseline"])
    base_wrong = sum(1 for r in samples["baseline"] if r["exact_match"] == 0)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors, outside = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: None if r.url.startswith(("file:", "data:")) else outside.append(r.url),
        )
        page.goto(report.as_uri())
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
        assert (tmp_path / "report.png").stat().st_size > 10_000

        assert "mera-baseline (baseline)" in page.inner_text("#task-table")
        rows = {r.split("\t")[0]: r.split("\t") for r in page.inner_text("#task-table").split("\n")}
        lines = next(runs[1].rglob("samples_ruclevr_*")).read_text().splitlines()
        other = [json.loads(x) for x in lines]
        right = sum(em_parity(r["resps"][0][0], r["doc"]["outputs"], True, True) for r in other)
        right /= len(other)
        assert rows["ruclevr"][-1].startswith(f"{right:.3f}")  # scored from its logs
        assert page.locator("#skills-chart svg").count() == 1
        total = page.locator("#match-count").inner_text()
        assert total.startswith(total.split(" of ")[1].split()[0])  # all shown at first

        page.select_option("#filter-task", "ruhhh_image")
        cards = page.locator("article.sample")
        assert page.inner_text("#match-count").startswith(f"{n_ruhhh} of")
        assert cards.count() == min(n_ruhhh, 20)
        assert set(cards.evaluate_all("cs => cs.map(c => c.dataset.task)")) == {"ruhhh_image"}
        assert cards.first.locator("img").count() == 1  # the item's picture
        assert cards.first.locator("img").get_attribute("src").startswith("data:image/jpeg")

        page.select_option("#filter-status", "wrong:0")
        assert page.inner_text("#match-count").startswith(f"{base_wrong} of")
        marks = page.locator("article.sample tr.answer:nth-child(2)").all_inner_texts()
        assert marks and all(m.startswith("✗ mera-baseline") for m in marks)

        # Click a card: its prompt appears, and it is the prompt that was sent.
        first = page.locator("article.sample").first
        first.locator("header").click()
        shown = first.locator("pre.prompt").inner_text()
        doc = first.get_attribute("data-doc")
        row = next(r for r in samples["baseline"] if str(r["doc"]["meta"]["id"]) == doc)
        assert shown.strip() == row["arguments"]["gen_args_0"]["arg_0"].strip()

        # An audio task has a player; a video task shows frames.
        page.select_option("#filter-status", "")
        page.select_option("#filter-task", "ruenvaqa")
        audio = page.locator("article.sample audio").first
        assert audio.get_attribute("src").startswith("data:audio/mpeg")
        # chromium decodes it: the player knows the clip's length.
        page.wait_for_function(
            "a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle()
        )
        page.select_option("#filter-task", "commonvideoqa")
        assert page.locator("article.sample").first.locator("img").count() == 4

        # Paging through everything, then filtering by a skill.
        page.select_option("#filter-task", "")
        assert page.is_disabled("#prev")
        page.click("#next")
        assert page.inner_text("#page-info").startswith("page 2 of")
        assert not page.is_disabled("#prev")
        page.select_option("#filter-skill", label="Speech recognition")
        tasks = set(
            page.locator("article.sample").evaluate_all("cs => cs.map(c => c.dataset.task)")
        )
        assert tasks == {"ruslun"}  # ruEnvAQA and the others do not test it
        page.screenshot(path=str(tmp_path / "filtered.png"))
        browser.close()
    assert errors == [] and outside == []


def test_report_without_the_dataset_says_so(
    runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """No mirror here: the page is still written, and each item says why it has no media."""
    from lm_eval_patches.cli import main

    monkeypatch.setenv("MERA_DATA_DIR", str(tmp_path / "empty"))
    out = tmp_path / "r.html"
    argv = ["report", str(runs[0]), "-o", str(out), "--include_path", str(TASKS_DIR)]
    assert main([*argv, "--max_samples_per_task", "2"]) == 0
    page = out.read_text()
    assert "dataset not available here" in page and "data:image/jpeg" not in page
    assert "media not shown" in capsys.readouterr().out


def test_report_scores_agree_with_the_runs_group_scores(baseline_run: Path) -> None:
    """The report's per-modality and overall rows are the run's own MERA group scores (the
    same definition), so a reader never sees two numbers for "image"."""
    from lm_eval_patches.report.collect import load_run, score_tables
    from lm_eval_patches.rescore import load_pack
    from lm_eval_patches.runlogs import find_run
    from lm_eval_patches.skills import load_taxonomy

    logs = find_run(baseline_run)
    pack = load_pack(TASKS_DIR)
    tables = score_tables([load_run(logs, pack)], pack, load_taxonomy())
    report = {row["modality"]: row["values"][0] for row in tables.modalities}
    groups = logs.results["groups"]
    expected = {
        "image": groups["mera_image"]["score,none"],
        "audio": groups["mera_audio"]["score,none"],
        "video": groups["mera_video"]["score,none"],
        "all": groups["mera_multimodal"]["score,none"],
    }
    assert set(report) == set(expected)
    for modality, value in expected.items():
        assert math.isclose(report[modality], value, abs_tol=1e-9), modality
