"""The reward server on loopback: concurrency, agreement with `score`, auth, limits."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rewardforge import RewardModel
from rewardforge.scoring.score import score_file
from rewardforge.serving.app import create_app
from rewardforge.serving.config import ServerSettings
from tests.conftest import free_port, running_server

KEY = "s3cret"


def rows(count: int) -> list[dict]:
    items = []
    for index in range(count):
        if index % 3 == 0:
            items.append(
                {
                    "messages": [
                        {"role": "user", "content": f"问题 {index}"},
                        {"role": "assistant", "content": "回答 " * (index % 7)},
                    ]
                }
            )
        else:
            items.append({"prompt": f"Question {index}?", "response": "answer " * (index % 11)})
    return items


@pytest.fixture(scope="module")
def server(tiny_reward_model_dir):
    """A live server with an API key and small limits, on a free loopback port."""
    settings = ServerSettings(
        max_batch_items=32,
        max_wait_ms=20,
        max_items_per_request=8,
        max_text_chars=2000,
        max_body_bytes=20_000,
    )
    app = create_app(RewardModel.load(tiny_reward_model_dir), settings, api_key=KEY)
    with running_server(app) as url:
        yield url


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_200_concurrent_requests_match_rewardforge_score(server, tiny_reward_model_dir, tmp_path):
    items = rows(200)

    async def send_all():
        async with httpx.AsyncClient(base_url=server, timeout=120) as client:
            requests = [
                client.post("/v1/score", json={"items": [item]}, headers=auth()) for item in items
            ]
            return await asyncio.gather(*requests)

    responses = asyncio.run(send_all())
    assert all(response.status_code == 200 for response in responses)
    served = [response.json()["rewards"][0] for response in responses]

    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n", encoding="utf-8"
    )
    score_file(tiny_reward_model_dir, source, tmp_path / "out.jsonl", progress=False)
    scored = [json.loads(line)["reward"] for line in (tmp_path / "out.jsonl").open()]
    assert served == pytest.approx(scored, abs=1e-5)

    metrics = httpx.get(f"{server}/metrics", headers=auth()).text
    batches = float(metrics.split("rewardforge_batch_size_count ")[1].split()[0])
    assert batches < 200  # concurrent requests were scored together
    assert 'rewardforge_requests_total{route="/v1/score",status="200"} 200.0' in metrics
    assert "rewardforge_requests_in_progress 0.0" in metrics  # all answered


def test_normalized_rewards(server, tiny_reward_model_dir):
    item = rows(2)[1]
    raw = httpx.post(f"{server}/v1/score", json={"items": [item]}, headers=auth()).json()
    norm = httpx.post(
        f"{server}/v1/score", json={"items": [item], "normalize": True}, headers=auth()
    ).json()
    recipe = RewardModel.load(tiny_reward_model_dir).recipe
    expected = (raw["rewards"][0] - recipe.reward_mean) / recipe.reward_std
    assert norm["rewards"][0] == pytest.approx(expected)


def test_get_reward_speaks_openrlhf(server, tiny_reward_model_dir):
    model = RewardModel.load(tiny_reward_model_dir)
    prompt_text, response_text = model.encoder.render("How are you?", "Fine, thanks.")
    body = {"query": [prompt_text + response_text], "prompts": [prompt_text], "labels": [None]}
    reply = httpx.post(f"{server}/get_reward", json=body, headers=auth())
    assert reply.status_code == 200, reply.text
    result = reply.json()
    expected = model.score(["How are you?"], ["Fine, thanks."])[0]
    assert result["rewards"] == result["scores"] and result["extra_logs"] == {}
    assert result["rewards"][0] == pytest.approx(expected, abs=1e-5)
    without_prompts = httpx.post(
        f"{server}/get_reward", json={"query": body["query"]}, headers=auth()
    ).json()
    assert without_prompts["rewards"][0] == pytest.approx(expected, abs=1e-5)


def test_get_reward_does_not_depend_on_how_the_client_ends_the_turn(server, tiny_reward_model_dir):
    """OpenRLHF decodes up to <|im_end|> and drops the template's newline after it."""
    model = RewardModel.load(tiny_reward_model_dir)
    prompt_text, response_text = model.encoder.render("你好吗？", "很好，谢谢。")
    assert response_text.endswith("<|im_end|>\n")
    as_rendered = prompt_text + response_text
    as_openrlhf_sends = as_rendered.removesuffix("\n")
    with_padding = as_openrlhf_sends + model.encoder.tokenizer.pad_token * 3
    body = {"query": [as_rendered, as_openrlhf_sends, with_padding]}
    rewards = httpx.post(f"{server}/get_reward", json=body, headers=auth()).json()["rewards"]
    expected = model.score(["你好吗？"], ["很好，谢谢。"])[0]
    assert rewards == pytest.approx([expected] * 3, abs=1e-5)


@pytest.mark.parametrize("path", ["/classify", "/v1/classify"])
def test_classify_speaks_vllms_protocol(server, tiny_reward_model_dir, path):
    """The request and response shapes vLLM documents for /classify (SGLang's /v1/classify is
    the same): a text or a list of texts in; per text index, label, probs, num_classes; usage.
    `probs` is the raw reward, the one `score` gives the same conversation."""
    model = RewardModel.load(tiny_reward_model_dir)
    texts = ["".join(model.encoder.render(p, r)) for p, r in (("Hi", "Hello!"), ("你好", "你好！"))]
    expected = model.score(["Hi", "你好"], ["Hello!", "你好！"])
    reply = httpx.post(f"{server}{path}", json={"model": "rm", "input": texts}, headers=auth())
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert set(result) == {"id", "object", "created", "model", "data", "usage"}
    assert result["object"] == "list" and result["model"] == "rm"
    assert result["id"].startswith("classify-")
    assert [set(item) for item in result["data"]] == [
        {"index", "label", "probs", "num_classes"}
    ] * 2
    assert [item["index"] for item in result["data"]] == [0, 1]
    assert [item["num_classes"] for item in result["data"]] == [1, 1]
    rewards = [item["probs"][0] for item in result["data"]]
    assert rewards == pytest.approx(expected, abs=1e-5)
    tokens = sum(
        len(model.encoder.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts
    )
    assert result["usage"]["prompt_tokens"] == result["usage"]["total_tokens"] >= tokens
    one = httpx.post(f"{server}{path}", json={"input": texts[0]}, headers=auth()).json()
    assert one["data"][0]["probs"][0] == pytest.approx(expected[0], abs=1e-5)
    assert httpx.post(f"{server}{path}", json={"input": texts}).status_code == 401


def test_classify_takes_token_ids_as_vllm_does(server, tiny_reward_model_dir):
    """vLLM's `input` may be token ids, one list or a list of lists: scored as they are."""
    model = RewardModel.load(tiny_reward_model_dir)
    ids = [model.encoder.encode(p, r).input_ids for p, r in (("Hi", "Hello!"), ("你好", "你好！"))]
    expected = model.score(["Hi", "你好"], ["Hello!", "你好！"])
    body = {"input": ids, "add_special_tokens": False}
    reply = httpx.post(f"{server}/classify", json=body, headers=auth()).json()
    assert [item["probs"][0] for item in reply["data"]] == pytest.approx(expected, abs=1e-5)
    one = httpx.post(f"{server}/classify", json={"input": ids[1]}, headers=auth()).json()
    assert one["data"][0]["probs"][0] == pytest.approx(expected[1], abs=1e-5)
    too_big = len(model.encoder.tokenizer)
    bad = httpx.post(f"{server}/classify", json={"input": [[1, too_big]]}, headers=auth())
    assert bad.status_code == 422 and "item 0: token ids must be 0 to" in bad.text


def test_health_needs_no_key_but_every_other_path_does(server):
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    body = {"items": rows(1)}
    assert httpx.post(f"{server}/v1/score", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(f"{server}/v1/score", json=body, headers=wrong).status_code == 401
    assert httpx.post(f"{server}/get_reward", json={"query": ["x"]}).status_code == 401
    assert httpx.get(f"{server}/metrics").status_code == 401
    assert httpx.get(f"{server}/docs").status_code == 401  # default deny: any route
    assert httpx.get(f"{server}/no/such/page").status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"items": rows(9)}, 413, "limit is 8"),
        ({"items": [{"prompt": "p", "response": "x" * 2001}]}, 422, "limit is 2000"),
        ({"items": [{"prompt": "p"}]}, 422, "item 0: missing key 'response'"),
        ({"items": [{"messages": [{"role": "user", "content": "q"}]}]}, 422, "assistant"),
        ({"items": "nope"}, 422, ""),
        ({"query": ["a", "b"], "prompts": ["a"]}, 422, "one entry per"),
        ({"query": [""]}, 422, "nothing to score"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(server, body, status, message):
    route = "/get_reward" if "query" in body else "/v1/score"
    reply = httpx.post(f"{server}{route}", json=body, headers=auth())
    assert reply.status_code == status and message in reply.text


def test_oversized_and_malformed_bodies(server):
    big = {"items": [{"prompt": "p", "response": "x" * 30_000}]}
    assert httpx.post(f"{server}/v1/score", json=big, headers=auth()).status_code == 413
    broken = httpx.post(f"{server}/v1/score", content=b"{not json", headers=auth())
    assert broken.status_code == 422
    empty = httpx.post(f"{server}/v1/score", json={"items": []}, headers=auth())
    assert empty.status_code == 200 and empty.json() == {"rewards": []}


def chunked_post(server: str, path: str, chunks: list[bytes], headers: dict[str, str]) -> str:
    """POST a chunked body (no Content-Length) over a raw socket; return the status line.

    The chunks are sent one by one, and the reply is read as soon as it comes: a server that
    answers before the body ends has not waited for it."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
        head += "Content-Type: application/json\r\n"
        head += "".join(f"{key}: {value}\r\n" for key, value in headers.items()) + "\r\n"
        connection.sendall(head.encode())
        connection.settimeout(0.5)
        for chunk in chunks:
            try:
                connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                reply = connection.recv(4096)
            except (TimeoutError, BlockingIOError):
                continue  # no answer yet: keep sending
            except OSError:  # the server closed the connection on us after answering
                break
            if reply:
                return reply.decode("latin-1").splitlines()[0]
        connection.settimeout(30)
        connection.sendall(b"0\r\n\r\n")
        return connection.recv(4096).decode("latin-1").splitlines()[0]


def test_a_chunked_body_over_the_limit_gets_413(server):
    chunks = [b'{"items": [{"prompt": "p", "response": "'] + [b"x" * 8_000] * 4 + [b'"}]}']
    assert " 413 " in chunked_post(server, "/v1/score", chunks, auth())


def test_without_the_key_the_body_is_not_read(server):
    # 401 comes back after the first chunk: the server did not wait for the (endless) rest.
    chunks = [b'{"items": ['] + [b" " * 1_000] * 1_000
    assert " 401 " in chunked_post(server, "/v1/score", chunks, {})


def test_a_chunked_body_within_the_limit_is_scored(server):
    body = json.dumps({"items": rows(2)}).encode()
    chunks = [body[:10], body[10:]]
    assert " 200 " in chunked_post(server, "/v1/score", chunks, auth())


def test_unknown_paths_share_one_metrics_label(server):
    for index in range(5):
        assert httpx.get(f"{server}/no/such/page/{index}", headers=auth()).status_code == 404
    metrics = httpx.get(f"{server}/metrics", headers=auth()).text
    assert 'route="other",status="404"' in metrics
    assert "/no/such/page" not in metrics


def test_load_from_concurrent_clients_has_no_errors(tiny_reward_model_dir, tmp_path):
    script = Path(__file__).resolve().parent.parent / "bench" / "server_load.py"
    command = [sys.executable, str(script), "--model", str(tiny_reward_model_dir)]
    command += ["--requests", "400", "--clients", "32", "--max-items", "4"]
    command += ["--json", str(tmp_path / "load.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "load.json").read_text())
    assert result["errors"] == 0 and result["stopped_cleanly"]
    assert result["model_calls"] < 400  # concurrent requests were batched


def test_sigterm_finishes_the_requests_in_flight(tiny_reward_model_dir):
    port = free_port()
    command = [sys.executable, "-m", "rewardforge.cli", "serve", "--model"]
    command += [str(tiny_reward_model_dir), "--port", str(port), "--max-wait-ms", "5000"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert time.time() < deadline and server.poll() is None, "server did not start"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        def post(index: int) -> httpx.Response:
            body = {"items": rows(index + 1)}
            return httpx.post(f"{url}/v1/score", json=body, timeout=60)

        with ThreadPoolExecutor(4) as pool:
            in_flight = [pool.submit(post, index) for index in range(4)]
            while "rewardforge_requests_in_progress 4.0" not in httpx.get(f"{url}/metrics").text:
                assert time.time() < deadline, "the requests did not reach the server"
                time.sleep(0.05)  # all four now wait in the batcher (5 s window)
            server.send_signal(signal.SIGTERM)
            replies = [future.result() for future in in_flight]
        assert [reply.status_code for reply in replies] == [200] * 4
        assert [len(reply.json()["rewards"]) for reply in replies] == [1, 2, 3, 4]
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()


def test_a_reference_model_is_served_with_references_in_the_request(tiny_reference_model_dir):
    from fastapi.testclient import TestClient

    model = RewardModel.load(tiny_reference_model_dir)
    items = [
        {"prompt": "天气？", "reference": "晴。", "response": "晴天。"},
        {"prompt": "Egg?", "reference": "9 minutes.", "response": "Ten."},
    ]
    with TestClient(create_app(model, ServerSettings())) as client:
        assert client.get("/health").json()["reference_mode"] is True
        response = client.post("/v1/score", json={"items": items})
        assert response.status_code == 200, response.text
        expected = model.score(["天气？", "Egg?"], ["晴天。", "Ten."], ["晴。", "9 minutes."])
        assert response.json()["rewards"] == pytest.approx(expected, abs=1e-5)
        missing = client.post("/v1/score", json={"items": [{"prompt": "Egg?", "response": "Ten."}]})
        assert missing.status_code == 422 and "needs a 'reference'" in missing.text
        rendered = client.post("/get_reward", json={"query": ["Egg? Ten."]})
        assert rendered.status_code == 422 and "reference-based" in rendered.text
