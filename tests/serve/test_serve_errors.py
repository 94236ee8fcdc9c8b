"""Bad requests get the right status and an OpenAI error object with a one-line message; the API key, the size
caps, the bounded queue (429 + Retry-After) and a client going away mid-stream."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx
import pytest
from serve_helpers import DOC, running


def error_of(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    message = body["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message and len(message) < 400, message
    return message


def chat(url, body=None, **kw):
    return httpx.post(url + "/v1/chat/completions", timeout=60, **({"json": body} if body is not None else {}), **kw)


def test_bad_requests(base_url, model_id):
    ok = {"model": model_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert "JSON" in error_of(chat(base_url, content=b'{"model": ', headers={"content-type": "application/json"}), 400)
    assert "does not exist" in error_of(chat(base_url, {**ok, "model": "gpt-4o"}), 404)
    assert chat(base_url, {**ok, "model": "gpt-4o"}).json()["error"]["code"] == "model_not_found"
    assert "messages is empty" in error_of(chat(base_url, {**ok, "messages": []}), 400)
    assert "messages" in error_of(chat(base_url, {"model": model_id}), 400)
    assert "no text" in error_of(chat(base_url, {**ok, "messages": [{"role": "user", "content": "  "}]}), 400)
    assert "n=2" in error_of(chat(base_url, {**ok, "n": 2}), 400)
    assert "Tool" in error_of(chat(base_url, {**ok, "tools": [{"type": "function", "function": {"name": "f"}}]}), 400)
    image = [{"type": "image_url", "image_url": {"url": "data:,"}}]
    assert "image_url" in error_of(chat(base_url, {**ok, "messages": [{"role": "user", "content": image}]}), 400)
    assert "max_tokens" in error_of(chat(base_url, {**ok, "max_tokens": 0}), 400)
    assert "temperature" in error_of(chat(base_url, {**ok, "temperature": 5}), 400)
    assert "repetition_penalty" in error_of(chat(base_url, {**ok, "repetition_penalty": 0}), 400)
    assert "frequency_penalty" in error_of(chat(base_url, {**ok, "frequency_penalty": 0.5}), 400)
    assert "no document" in error_of(chat(base_url, {**ok, "document": "doc-" + "0" * 24}), 404)
    assert "not a document id" in error_of(chat(base_url, {**ok, "document": "../../etc"}), 404)
    assert "No route" in error_of(httpx.get(base_url + "/v1/nothing"), 404)
    assert "not allowed" in error_of(httpx.get(base_url + "/v1/chat/completions"), 405)
    assert "prompt is empty" in error_of(httpx.post(base_url + "/v1/completions", json={"model": model_id}), 400)
    assert "not a readable multipart" in error_of(httpx.post(base_url + "/v1/longdoc/documents", content=b"x",
                                                             headers={"content-type": "multipart/form-data"}), 400)
    assert "No files" in error_of(httpx.post(base_url + "/v1/longdoc/documents", files=[("other", ("a.txt", b"x"))]), 400)
    binary = httpx.post(base_url + "/v1/longdoc/documents", files=[("files", ("blob.bin", bytes(range(256)) * 50))])
    assert "blob.bin" in error_of(binary, 400)
    assert chat(base_url, ok).status_code == 200  # and the server still answers


def test_api_key(tiny_engine, serve_settings, model_id):
    ok = {"model": model_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with running(tiny_engine, replace(serve_settings, api_key="s3cret")) as url:
        assert "Missing API key" in error_of(chat(url, ok), 401)
        assert "Incorrect API key" in error_of(chat(url, ok, headers={"Authorization": "Bearer s3cre"}), 401)
        assert "Incorrect" in error_of(chat(url, ok, headers={"Authorization": "Basic s3cret"}), 401)
        # checked before the body is read: a wrong key with a broken body is still 401
        assert error_of(chat(url, content=b"{", headers={"Authorization": "Bearer no"}), 401)
        assert chat(url, ok, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(url + "/health").json()["status"] == "ok"  # health and the page stay open
        assert httpx.get(url + "/").status_code == 200
        from openai import AuthenticationError, OpenAI

        with pytest.raises(AuthenticationError):
            OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_size_caps(tiny_engine, serve_settings, model_id):
    ok = {"model": model_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    settings = replace(serve_settings, max_request_bytes=4000, max_document_tokens=200, max_document_bytes=3000)
    with running(tiny_engine, settings) as url:
        big = {**ok, "messages": [{"role": "user", "content": "x " * 3000}]}
        assert "--max-request-size" in error_of(chat(url, big), 413)

        def chunked():  # no Content-Length: counted while read
            yield json.dumps(big).encode()

        assert "--max-request-size" in error_of(chat(url, content=chunked(),
                                                     headers={"content-type": "application/json"}), 413)
        doc = {**ok, "messages": [{"role": "system", "content": DOC[:3000]}, {"role": "user", "content": "q?"}]}
        assert "--max-document-tokens" in error_of(chat(url, doc), 413)
        up = httpx.post(url + "/v1/longdoc/documents", files=[("files", ("a.txt", b"word " * 700))])
        assert "--max-document-size" in error_of(up, 413)
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("code/big.py", "x = 1\n" * 5000)  # compresses to a few hundred bytes
        up = httpx.post(url + "/v1/longdoc/documents", files=[("files", ("code.zip", buf.getvalue()))])
        assert "unpacks to" in error_of(up, 413)
        assert chat(url, ok).status_code == 200


def long_stream(url, model_id, **kw):
    """A streamed request that generates for a long time (greedy, many tokens) unless cancelled."""
    body = {"model": model_id, "messages": [{"role": "user", "content": DOC[:1500] + "\n\nGo on."}],
            "max_tokens": 100000, "temperature": 0, "stream": True}
    return httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60, **kw)


def wait_idle(url, limit_s=60.0) -> None:
    deadline = time.monotonic() + limit_s
    while httpx.get(url + "/health").json()["busy"]:
        assert time.monotonic() < deadline, "the server stayed busy after the client went away"
        time.sleep(0.1)


def test_queue_full_is_429_and_a_client_that_leaves_frees_the_engine(tiny_engine, serve_settings, model_id):
    ok = {"model": model_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with running(tiny_engine, replace(serve_settings, max_queue=0)) as url:
        with long_stream(url, model_id) as stream:
            lines = stream.iter_lines()
            first = next(line for line in lines if line.startswith("data:"))
            assert json.loads(first[5:])["choices"][0]["delta"]["role"] == "assistant"
            busy = chat(url, ok)
            assert "busy" in error_of(busy, 429)
            assert int(busy.headers["Retry-After"]) >= 1
            from openai import OpenAI, RateLimitError

            with pytest.raises(RateLimitError):  # the real client sees the same 429
                OpenAI(base_url=url + "/v1", api_key="x", max_retries=0).chat.completions.create(**ok)
            assert httpx.get(url + "/health").json()["busy"] is True  # the long answer was still being generated
        # the stream was closed mid-answer: the generation is cancelled and the next request is served
        wait_idle(url)
        after = chat(url, ok)
        assert after.status_code == 200, after.text


def test_a_non_streaming_client_that_leaves_cancels_its_generation(tiny_engine, serve_settings, model_id):
    body = {"model": model_id, "messages": [{"role": "user", "content": DOC[:1500] + "\n\nGo on."}],
            "max_tokens": 100000, "temperature": 0}
    with running(tiny_engine, serve_settings) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/chat/completions", json=body, timeout=httpx.Timeout(60, read=1.0))
        wait_idle(url)
        assert chat(url, {**body, "max_tokens": 2}).status_code == 200
