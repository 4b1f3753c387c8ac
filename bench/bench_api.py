"""Chat API backend throughput against a loopback server with a fixed 200 ms latency.

Everything goes through the real ``lm-eval`` CLI (fresh processes, ``--log_samples`` on) on
fixture data of 1024x768 JPEGs (``mera-mm fixtures --image-size 1024x768``), against the
loopback server of the tests (``tests/loopback_api.py``, run as its own process). Printed, all
measured side by side in this one run:

1. HTTP-phase efficiency at ``num_concurrent`` 1, 4, 16, 64 over 64 docs: the ideal time
   (ceil(64 / C) x latency) over the time from the first request's arrival to the last reply
   (target >= 0.9 up to 16; upstream measured 0.82 at 16);
2. the whole process (start to exit) of upstream lm-eval's own ``local-chat-completions``
   (imported with ``registration.import_upstream`` and registered under another name) over ours,
   same task, server and ``num_concurrent=16`` (target >= 3x);
3. at 1,000 docs, our whole-process rate as a fraction of the ideal 80 requests/s
   (C=16 / 0.2 s; target >= 0.65).

    python bench/bench_api.py [--docs 64] [--big-docs 1000] [--latency 0.2] [--skip-big]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TASK, DATASET = "weird", "WEIRD"
UPSTREAM_NAME = "upstream-local-chat-completions"


def upstream_cli(argv: list[str]) -> int:
    """Run lm-eval with upstream's LocalChatCompletion registered as UPSTREAM_NAME."""
    from lm_eval.api.registry import model_registry

    from lm_eval_patches.registration import import_upstream, register_backends

    register_backends()
    cls = import_upstream(
        ("local-chat-completions", "openai-chat-completions"),
        "lm_eval.models.openai_completions",
        "LocalChatCompletion",
    )
    model_registry._objs[UPSTREAM_NAME] = cls
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm-eval", *argv]
    cli_evaluate()
    return 0


class Server:
    """tests/loopback_api.py in a process of its own (so it never competes for our GIL)."""

    def __init__(self, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "loopback_api.py"), "--latency", str(latency)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self.proc.stdout.readline().strip()
        self.base = self.url.removesuffix("/v1/chat/completions")

    def call(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(
            self.base + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def fixtures(out: Path, docs: int) -> Path:
    subprocess.run(
        [
            str(BIN / "mera-mm"),
            "fixtures",
            "--out",
            str(out),
            "--datasets",
            DATASET,
            "--test",
            str(docs),
            "--image-size",
            "1024x768",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def run(
    model: str, server: Server, mirror: Path, concurrency: int, out: Path
) -> tuple[float, dict]:
    """Wall seconds of one CLI run and the server's stats for it."""
    server.call("/reset", "POST")
    args = [
        "run", "--model", model,
        "--model_args", f"model=bench,base_url={server.url},num_concurrent={concurrency}",
        "--include_path", str(REPO / "multimodal_tasks"), "--tasks", TASK,
        "--apply_chat_template", "--log_samples", "--output_path", str(out),
    ]  # fmt: skip
    env = {**os.environ, "MERA_DATA_DIR": str(mirror), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    if model == UPSTREAM_NAME:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--upstream-cli", *args]
    else:
        cmd = [str(BIN / "lm-eval"), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, server.call("/stats")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--upstream-cli":
        return upstream_cli(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--big-docs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-upstream", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    server = Server(args.latency)
    try:
        mirror = fixtures(tmp / "mirror", args.docs)
        # A first run warms the datasets cache (parquet -> Arrow), as for any second run.
        run("local-chat-completions", server, mirror, 16, tmp / "warm")
        print(
            f"1. HTTP-phase efficiency, {args.docs} docs of 1024x768 JPEG, "
            f"{args.latency:g} s server"
        )
        for concurrency in (1, 4, 16, 64):
            _, stats = run(
                "local-chat-completions", server, mirror, concurrency, tmp / f"c{concurrency}"
            )
            assert stats["requests"] == args.docs, stats
            phase = stats["last_finish"] - stats["first_arrival"]
            ideal = math.ceil(args.docs / concurrency) * args.latency
            print(
                f"   num_concurrent={concurrency:>2}: {ideal / phase:.2f} of ideal "
                f"({phase:.2f} s vs {ideal:.2f} s; max in flight {stats['max_in_flight']})"
            )
        ours, _ = run("local-chat-completions", server, mirror, 16, tmp / "ours")
        if not args.skip_upstream:
            theirs, stats = run(UPSTREAM_NAME, server, mirror, 16, tmp / "upstream")
            assert stats["requests"] == args.docs, stats
            print(
                f"2. whole process at num_concurrent=16: upstream {theirs:.1f} s, "
                f"ours {ours:.1f} s -> ours {theirs / ours:.1f}x faster"
            )
        if not args.skip_big:
            big = fixtures(tmp / "mirror-big", args.big_docs)
            run("local-chat-completions", server, big, 16, tmp / "warm-big")
            wall, stats = run("local-chat-completions", server, big, 16, tmp / "big")
            assert stats["requests"] == args.big_docs, stats
            rate, ideal = args.big_docs / wall, 16 / args.latency
            phase = stats["last_finish"] - stats["first_arrival"]
            print(
                f"3. {args.big_docs} docs, whole process: {rate:.1f} req/s of ideal {ideal:.0f} "
                f"-> {rate / ideal:.2f} ({wall:.1f} s; HTTP phase {phase:.1f} s = "
                f"{args.big_docs / ideal / phase:.2f} of ideal, the rest is start-up and "
                "lm-eval's fixed cost)"
            )
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
