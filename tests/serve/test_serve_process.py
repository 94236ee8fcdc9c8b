"""`longdoc serve` as a user runs it (a subprocess): a client killed mid-stream leaves the server serving the next
request; SIGTERM drains the requests in flight (the stream ends whole, the upload is stored whole) and exits
without leaving a half-written stored ingest."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
from serve_helpers import DOC


def start_server(model_dir, tmp_path, *extra):
    cmd = [sys.executable, "-c", "from longdoc.cli.main import cli; cli()", "serve", "--port", "0", "-m",
           str(model_dir), "--chunk-size", "16", "--chunks", "4", "--documents-dir", str(tmp_path / "documents"),
           "--store-dir", str(tmp_path / "store"), "--max-tokens", "8", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log: list[str] = []
    found = threading.Event()
    port = {}

    def read():
        for line in proc.stderr:
            log.append(line)
            m = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port["n"] = int(m.group(1))
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(180):
        proc.kill()
        raise AssertionError("the server did not start: " + "".join(log))
    return proc, f"http://127.0.0.1:{port['n']}", log


def model_of(url):
    return httpx.get(url + "/v1/models").json()["data"][0]["id"]


CLIENT = """
import httpx, sys
body = {"model": sys.argv[2], "messages": [{"role": "user", "content": sys.argv[3]}], "max_tokens": 100000,
        "temperature": 0, "stream": True, "stop_on_repeat": False, "ignore_eos": True}  # still going when killed
with httpx.stream("POST", sys.argv[1] + "/v1/chat/completions", json=body, timeout=60) as r:
    lines = r.iter_lines()  # held: an abandoned iterator is closed at once, and with it the connection
    for line in lines:
        if '"content"' in line:
            print("streaming", flush=True)
            break
    import time
    time.sleep(600)
"""


def test_killed_client_and_sigterm_drain(tiny_model_dir, tmp_path):
    proc, url, log = start_server(tiny_model_dir, tmp_path)
    try:
        model = model_of(url)
        client = subprocess.Popen([sys.executable, "-c", CLIENT, url, model, DOC[:1500] + "\n\nGo on."],
                                  stdout=subprocess.PIPE, text=True)
        assert client.stdout.readline().strip() == "streaming"
        assert httpx.get(url + "/health").json()["busy"] is True, "".join(log)
        client.kill()  # mid-stream, no goodbye
        client.wait(30)
        deadline = time.monotonic() + 60
        while httpx.get(url + "/health").json()["busy"]:
            assert time.monotonic() < deadline, "the killed client's generation was not cancelled"
            time.sleep(0.1)
        ok = httpx.post(url + "/v1/chat/completions", timeout=60, json={
            "model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"]

        # SIGTERM while a stream and an upload are in flight: both finish, then the process exits
        results: dict = {}

        def stream():
            body = {"model": model, "messages": [{"role": "user", "content": DOC + "\n\nq?"}], "max_tokens": 40,
                    "temperature": 0, "stream": True}
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=120) as r:
                results["stream"] = [line for line in r.iter_lines() if line.startswith("data:")]

        def upload():
            big = "\n".join(f"Entry {i}: the ledger records {i * 13} units." for i in range(1500))
            r = httpx.post(url + "/v1/longdoc/documents", files=[("files", ("ledger.txt", big.encode()))], timeout=300)
            results["upload"] = r.status_code

        t1 = threading.Thread(target=stream)
        t1.start()
        deadline = time.monotonic() + 60
        while not httpx.get(url + "/health").json()["busy"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t2 = threading.Thread(target=upload)
        t2.start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        t1.join(300)
        t2.join(300)
        # uvicorn re-raises the signal after its shutdown, so the exit status is SIGTERM's, as for any daemon
        assert proc.wait(300) in (0, -signal.SIGTERM), "".join(log)
        assert "Application shutdown complete" in "".join(log)
    finally:
        if proc.poll() is None:
            proc.kill()
    events = results["stream"]
    assert events[-1] == "data: [DONE]"
    finish = [json.loads(e[5:])["choices"][0]["finish_reason"] for e in events[1:-1]]
    assert finish[-1] in ("stop", "length")
    assert results.get("upload") == 200, "".join(log)
    leftovers = [p for p in tmp_path.rglob(".tmp-*")]
    assert not leftovers, leftovers
    entries = [p for p in (tmp_path / "store").iterdir()]
    assert entries and all((p / "manifest.json").is_file() and (p / "cache.safetensors").is_file() for p in entries)
    assert not any("Traceback" in line for line in log), "".join(log)
