"""A fully cached re-run against the first run, through a chat API backend and a 100 ms server.

Both runs are the same ``simple_evaluate`` call (``--use_cache`` on one file), side by side in one
process, against a loopback OpenAI-style server that answers each request after a fixed latency
and counts what it receives. Printed: wall time of each run, their ratio (target: the cached
re-run at least 20x faster) and the requests the server got in each run (the re-run: 0).

    python bench/bench_resume.py [--docs 150] [--latency 0.1] [--task weird ruenvaqa]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TASK_DATASETS = {"weird": "WEIRD", "ruenvaqa": "ruEnvAQA", "commonvideoqa": "CommonVideoQA"}
REPO = Path(__file__).resolve().parents[1]


class LatencyServer(ThreadingHTTPServer):
    """Answers /v1/chat/completions after ``latency`` seconds; counts requests."""

    daemon_threads = True

    def __init__(self, latency: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.latency = latency
        self.requests = 0
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: LatencyServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(self.server.latency)
        with self.server.lock:
            self.server.requests += 1
        # A deterministic answer per request, so both runs must produce the same outputs.
        letter = "ABCD"[hashlib.sha256(body).digest()[0] % 4]
        reply = json.dumps(
            {
                "id": "bench",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": letter},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def run_once(tasks: list[str], url: str, cache: Path, manager: object) -> tuple[float, dict]:
    """One evaluation; (wall seconds, {task: sorted responses})."""
    import lm_eval

    start = time.perf_counter()
    results = lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args=f"model=bench,base_url={url},num_concurrent=1,tokenized_requests=False",
        tasks=tasks,
        apply_chat_template=True,
        use_cache=str(cache),
        task_manager=manager,
        log_samples=True,
    )
    wall = time.perf_counter() - start
    answers = {
        t: [s["resps"] for s in sorted(results["samples"][t], key=lambda s: s["doc_id"])]
        for t in tasks
    }
    return wall, answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=150, help="test docs per task")
    parser.add_argument("--latency", type=float, default=0.1, help="server latency, seconds")
    parser.add_argument(
        "--task", nargs="+", default=["weird", "ruenvaqa"], choices=sorted(TASK_DATASETS)
    )
    args = parser.parse_args()
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[name] = "1"
    from lm_eval_patches.fixtures.builder import FixtureOptions, build_fixtures

    work = Path(tempfile.mkdtemp(prefix="mera-bench-resume-"))
    build_fixtures(
        work / "data", [TASK_DATASETS[t] for t in args.task], FixtureOptions(test=args.docs)
    )
    os.environ["MERA_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("OPENAI_API_KEY", "bench")
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(REPO / "multimodal_tasks"), include_defaults=False)
    server = LatencyServer(args.latency)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    cache = work / "cache"
    try:
        first_s, first = run_once(args.task, url, cache, manager)
        first_requests = server.requests
        again_s, again = run_once(args.task, url, cache, manager)
        recomputed = server.requests - first_requests
    finally:
        server.shutdown()
    total = args.docs * len(args.task)
    print(f"tasks {', '.join(args.task)}: {total} requests, server latency {args.latency:.3f} s")
    print(f"first run     {first_s:8.2f} s   server requests {first_requests}")
    print(f"cached re-run {again_s:8.2f} s   server requests {recomputed} (recomputed)")
    print(f"ratio first/cached: {first_s / again_s:.1f}x (target >= 20x)")
    print(f"outputs identical: {first == again}")
    return 0 if first == again and recomputed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
