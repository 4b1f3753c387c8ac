"""Renders the report as one HTML file: tables and the skills chart server-side, the sample
browser as our own inlined script over an embedded JSON block. No external resource at all."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from lm_eval_patches.report.collect import RunView, ScoreTables


def _static(name: str) -> str:
    return resources.files("lm_eval_patches.report").joinpath(f"static/{name}").read_text("utf-8")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _delta(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return ""
    diff = value - base
    cls = "up" if diff > 0 else "down" if diff < 0 else ""
    return f' <span class="{cls}">({diff:+.3f})</span>'


def _table(
    title_cols: list[str],
    rows: list[tuple[list[str], list[float | None], list[float | None] | None]],
    runs: list[RunView],
    table_id: str,
) -> str:
    """Rows: (text cells, one value per run, optional judge value per run)."""
    base = next((i for i, r in enumerate(runs) if r.is_baseline), None)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in title_cols)
    head += "".join(
        f"<th>{html.escape(r.label)}{' (baseline)' if i == base else ''}</th>"
        for i, r in enumerate(runs)
    )
    body = []
    for texts, values, judge in rows:
        cells = "".join(f'<td class="text">{html.escape(t)}</td>' for t in texts)
        for i, value in enumerate(values):
            extra = _delta(value, values[base]) if base is not None and i != base else ""
            js = ""
            if judge and judge[i] is not None:
                js = f' <span class="js">JS {judge[i]:.3f}</span>'
            cls = ' class="base"' if i == base else ""
            cells += f"<td{cls}>{_fmt(value)}{extra}{js}</td>"
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="scores" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def render_page(
    runs: list[RunView],
    tables: ScoreTables,
    chart_svg: str,
    skills: list[str],
    samples: list[dict[str, Any]],
    media: dict[str, dict[str, Any]],
    problems: list[str],
) -> str:
    """The whole HTML document as a string."""
    task_rows = [
        ([r["task"], ", ".join(r["modalities"]), r["metric"]], r["values"], r["judge"])
        for r in tables.tasks
    ]
    dataset_rows = [
        (
            [r["dataset"].split("/")[-1], ", ".join(r["modalities"]), str(len(r["tasks"]))],
            r["values"],
            None,
        )
        for r in tables.datasets
    ]
    modality_rows = [
        ([r["modality"], str(r["datasets"])], r["values"], None) for r in tables.modalities
    ]
    skill_rows = [
        ([r["skill"], r["top"], str(r["datasets"])], r["values"], None) for r in tables.skills
    ]
    payload = {
        "runs": [r.label for r in runs],
        "skills": skills,
        "samples": samples,
        "media": media,
    }
    # "</" inside a JSON string would end the script element early.
    data = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    sources = "".join(
        f"<li>{html.escape(r.label)}: {html.escape(str(r.logs.folder))} "
        f"({html.escape(r.source)})</li>"
        for r in runs
    )
    problem_list = "".join(f"<li>{html.escape(p)}</li>" for p in problems[:50])
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MERA Multi report</title>
<style>{_static("report.css")}</style></head>
<body>
<h1>MERA Multi report</h1>
<p class="meta">{len(runs)} run(s), made {made} by mera-mm report. Scores: each task's
score as the MERA group scores define it (<code>exact_match_norm</code>; ruSLUn: the mean of
intent EM and slot F1), datasets weighted by samples scored, modalities and "all" as plain means
over datasets; JS is the judge
score where <code>mera-mm score --judge_url</code> added it; differences are against the
baseline run.</p>
<ul class="meta">{sources}</ul>
{f'<ul class="problems">{problem_list}</ul>' if problem_list else ""}
<h2>Per modality</h2>
{_table(["Modality", "Datasets"], modality_rows, runs, "modality-table")}
<h2>Per dataset</h2>
{_table(["Dataset", "Modalities", "Tasks"], dataset_rows, runs, "dataset-table")}
<h2>Per task</h2>
{_table(["Task", "Modalities", "Metric"], task_rows, runs, "task-table")}
<h2>Per skill</h2>
<div id="skills-chart">{chart_svg}</div>
<details><summary>Skill scores as a table</summary>
{_table(["Skill", "Category", "Datasets"], skill_rows, runs, "skill-table")}</details>
<h2>Samples</h2>
<div class="controls">
<label>Task <select id="filter-task"><option value="">all</option></select></label>
<label>Skill <select id="filter-skill"><option value="">all</option></select></label>
<label>Answer <select id="filter-status"><option value="">all</option></select></label>
<button id="prev" type="button">‹ previous</button>
<span id="page-info"></span>
<button id="next" type="button">next ›</button>
<span id="match-count" class="meta"></span>
</div>
<div id="samples"></div>
<script id="mera-data" type="application/json">{data}</script>
<script>{_static("report.js")}</script>
</body></html>
"""
