"""A stand-in for the Hugging Face Hub's dataset API on 127.0.0.1, for ``mera-mm mirror`` tests.

It serves folders as dataset repositories through the endpoints ``huggingface_hub`` calls:
``/api/datasets/<id>/revision/<rev>`` (info), ``/api/datasets/<id>/tree/<rev>`` (file list with
git blob ids, LFS sha256 and sizes) and ``/datasets/<id>/resolve/<rev>/<path>`` (HEAD and GET,
with Range). Knobs make it misbehave the way networks and hubs do: cut a file's body midway,
hold a file's body until released (so a test can kill the client mid-download), serve corrupt
bytes, or demand a token. Every request is logged as (method, path, Range header).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_standin_token"


@dataclass
class Behaviour:
    """What the stand-in does wrong, per file path inside a repository."""

    cut_once: set[str] = field(default_factory=set)  # send half the body, drop the connection
    hold: set[str] = field(default_factory=set)  # send half the body, then wait for `release`
    corrupt: set[str] = field(default_factory=set)  # serve bytes that do not match the tree
    private: set[str] = field(default_factory=set)  # repo ids that need the token
    cut_at: int | None = None  # bytes sent before a cut or hold (default: half the body)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


def _entry(root: Path, path: Path) -> dict:
    data = path.read_bytes()
    rel = path.relative_to(root).as_posix()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    entry = {"type": "file", "path": rel, "size": len(data), "oid": blob}
    if path.suffix == ".parquet":  # the hub stores data files in LFS
        sha = hashlib.sha256(data).hexdigest()
        entry["lfs"] = {"oid": sha, "size": len(data), "pointerSize": 134}
    return entry


class HubStandin:
    """``with HubStandin({repo_id: folder}) as hub: hub.url`` serves those repositories."""

    def __init__(self, repos: dict[str, Path], behaviour: Behaviour | None = None) -> None:
        self.repos = {k: Path(v) for k, v in repos.items()}
        self.behaviour = behaviour or Behaviour()
        self.log: list[tuple[str, str, str | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.behaviour.release.set()
        self._server.shutdown()
        self._server.server_close()

    def gets(self, suffix: str = "") -> list[tuple[str, str | None]]:
        """(path, Range) of the file GETs logged so far whose path ends with ``suffix``."""
        return [
            (p, r) for m, p, r in self.log if m == "GET" and "/resolve/" in p and p.endswith(suffix)
        ]

    def tree(self, repo_id: str) -> list[dict]:
        root = self.repos[repo_id]
        files = sorted(p for p in root.rglob("*") if p.is_file())
        return [_entry(root, p) for p in files]

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                return

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _json(self, payload: object, status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _deny(self) -> None:
                data = b'{"error": "Access to this dataset is restricted."}'
                self.send_response(401)
                self.send_header("X-Error-Code", "GatedRepo")
                self.send_header("X-Error-Message", "Access to this dataset is restricted.")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(data)

            def _serve(self, body: bool) -> None:
                path = unquote(urlparse(self.path).path)
                hub.log.append((self.command, path, self.headers.get("Range")))
                for repo_id in hub.repos:
                    if f"/datasets/{repo_id}/" in path or path.endswith(f"/datasets/{repo_id}"):
                        break
                else:
                    self._json({"error": "Repository not found"}, 404)
                    return
                token = self.headers.get("Authorization", "")
                if repo_id in hub.behaviour.private and token != f"Bearer {TOKEN}":
                    self._deny()
                    return
                info = f"/api/datasets/{repo_id}"
                if path == info or path.startswith(f"{info}/revision/"):
                    siblings = [{"rfilename": e["path"]} for e in hub.tree(repo_id)]
                    self._json({"id": repo_id, "sha": COMMIT, "siblings": siblings})
                elif path.startswith(f"/api/datasets/{repo_id}/tree/"):
                    self._json(hub.tree(repo_id))
                elif path.startswith(f"/datasets/{repo_id}/resolve/"):
                    rel = path.split("/resolve/", 1)[1].split("/", 1)[1]
                    self._file(repo_id, rel, body)
                else:
                    self._json({"error": "not found"}, 404)

            def _file(self, repo_id: str, rel: str, body: bool) -> None:
                file = hub.repos[repo_id] / rel
                if not file.is_file():
                    self._json({"error": "Entry not found"}, 404)
                    return
                data = file.read_bytes()
                entry = _entry(hub.repos[repo_id], file)
                etag = entry["lfs"]["oid"] if "lfs" in entry else entry["oid"]
                if rel in hub.behaviour.corrupt:
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start = 0
                ranged = self.headers.get("Range")
                if ranged and ranged.startswith("bytes="):
                    start = int(ranged[6:].split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                rest = data[start:]
                behaviour = hub.behaviour
                if rel in behaviour.hold or rel in behaviour.cut_once:
                    half = behaviour.cut_at or len(rest) // 2
                    self.wfile.write(rest[:half])
                    self.wfile.flush()
                    if rel in behaviour.hold:
                        behaviour.holding.set()
                        behaviour.release.wait(timeout=60)
                    behaviour.cut_once.discard(rel)
                    self.close_connection = True
                    try:  # the body stops short: the client must resume
                        self.connection.shutdown(2)
                    except OSError:  # the client is gone already (killed)
                        pass
                    return
                self.wfile.write(rest)

        return Handler
