"""The skills chart: a horizontal grouped bar chart as inline SVG, drawn by matplotlib.

Server-side SVG keeps the page free of any script library and readable offline; text stays
text (``svg.fonttype: none``) so the page is small and searchable.
"""

from __future__ import annotations

import io
import re
from typing import Any

# Colour-blind-safe palette (Okabe-Ito), one colour per run.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def skills_svg(rows: list[dict[str, Any]], run_labels: list[str]) -> str:
    """SVG markup of per-skill scores (``rows``: {"skill", "values": one per run}), 0..1 axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_runs = max(1, len(run_labels))
    bar = 0.8 / n_runs
    height = max(2.5, 0.22 * len(rows) * max(1.0, n_runs * 0.6) + 1.2)
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "mera"}):
        fig, ax = plt.subplots(figsize=(8.5, height))
        for i, label in enumerate(run_labels):
            ys = [
                len(rows) - 1 - k + (n_runs - 1 - i - (n_runs - 1) / 2) * bar
                for k in range(len(rows))
            ]
            xs = [row["values"][i] if row["values"][i] is not None else 0.0 for row in rows]
            ax.barh(ys, xs, height=bar * 0.95, color=PALETTE[i % len(PALETTE)], label=label)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([row["skill"] for row in reversed(rows)])
        ax.set_xlim(0, 1)
        ax.set_xlabel("mean score of the datasets that test the skill")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        plt.close(fig)
    svg = buf.getvalue()
    # Drop the XML prologue and the RDF metadata block (it only names outside vocabularies).
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg") :], flags=re.S)
    return svg
