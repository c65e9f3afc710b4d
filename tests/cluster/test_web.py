"""Web views on two hosts (tests/programs/wordcount.py's pages): each request is answered by
the worker that owns its key, whichever host it lands on; while the owner is SIGKILLed, or its
partitions move to the other host, an answer is the right one or a 503 with Retry-After,
never a count from a copy that is not current (a fresh store would say 0)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from shoal.cluster.client import SyncClient
from shoal.contrib.asgi import views
from tests.cluster.test_faust_programs import program_env
from tests.cluster.test_tables_cluster import Outputs, check_counts, committed, produce_words
from tests.helpers import wait_until_sync
from tests.processes import Clusterctl

pytestmark = pytest.mark.kafka


def get(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, Any, str]:
    """(status, JSON body, Retry-After) of one request."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers.get("Retry-After", "")


def owner_pids(urls: list[str], words: list[str]) -> dict[str, int]:
    """The pid of the worker that answers each word's page (from both hosts: the same)."""
    pids = {}
    for word in words:
        answers = {get(f"{url}/count/{word}/")[1]["pid"] for url in urls}
        assert len(answers) == 1, (word, answers)
        pids[word] = answers.pop()
    return pids


def check_lookups(urls: list[str], expected: dict[str, int], until: float) -> tuple[int, int]:
    """Ask every word of ``expected`` on every host until ``until`` or until all answer 200
    in one round; every 200 must be the expected count. Returns (200s, 503s) seen."""
    ok = unavailable = 0
    while True:
        round_ok = True
        for url in urls:
            for word, count in expected.items():
                status, body, retry = get(f"{url}/table/word_counts/{word}")
                if status == 200:
                    assert body == count, (url, word, body, count)
                    ok += 1
                else:
                    assert status == 503 and retry, (url, word, status, body)
                    unavailable += 1
                    round_ok = False
        if round_ok or time.monotonic() > until:
            assert round_ok, f"lookups still unavailable: {unavailable} 503s"
            return ok, unavailable


def test_lookups_are_routed_to_the_owner_through_a_kill_and_a_handover(
    kafka_bootstrap: str, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = program_env(kafka_bootstrap, WORDCOUNT_APP_ID=unique)
    first = Clusterctl(
        "tests.programs.wordcount",
        "up",
        "--workers",
        "2",
        env={**env, "APP_DATADIR": str(tmp_path / "one")},
    )
    second: Clusterctl | None = None
    outputs = Outputs(kafka_bootstrap, f"{unique}-counted")
    try:
        first.wait_for("this host owns 8 partitions over 2 workers", 90)
        second = Clusterctl(
            "tests.programs.wordcount",
            "up",
            "--workers",
            "1",
            env={**env, "APP_DATADIR": str(tmp_path / "two")},
        )
        second.wait_for("this host owns 4 partitions over 1 workers", 90)
        urls = [first.web_url(), second.web_url()]
        wait_until_sync(
            lambda: all(len(get(f"{u}/router")[1]["hosts"]) == 2 for u in urls),
            30,
            "both hosts to know each other",
        )
        sent = produce_words(kafka_bootstrap, f"{unique}-words", 0, 2000)
        counts = check_counts(kafka_bootstrap, unique, sent, outputs)
        words = sorted(sent)[:24]
        expected = {w: counts[w] for w in words}
        check_lookups(urls, expected, time.monotonic() + 30)

        # The page of a routed view runs in the worker that owns the word, wherever asked.
        pids = owner_pids(urls, words)
        answered = set(pids.values())
        assert answered & set(first.worker_pids().values()), pids  # both hosts' workers
        assert answered & set(second.worker_pids().values()), pids
        for url in urls:
            status, body, _ = get(f"{url}/lookup/?word={words[0]}")
            assert (status, body["count"], body["pid"]) == (200, expected[words[0]], pids[words[0]])

        # Bad input: a 4xx JSON error naming the problem; a view that raises: a 500 naming it.
        base = urls[0]
        assert get(f"{base}/table/nope/x")[:2] == (
            404,
            {"error": "unknown table 'nope' (tables: word_counts)", "table": "nope"},
        )
        status, body, _ = get(f"{base}/lookup/")
        assert status == 400 and "query parameter 'word' is required" in body["error"]
        status, body, _ = get(f"{base}/words/", b"not json", "POST")
        assert status == 400 and "not valid JSON" in body["error"]
        status, body, _ = get(f"{base}/words/", b'{"word": 1}', "POST")
        assert status == 400 and body["error"] == 'expected {"word": "..."}'
        status, body, _ = get(f"{base}/words/", method="DELETE")
        assert status == 405 and body["allowed"] == ["GET", "HEAD", "POST"]
        status, body, _ = get(f"{base}/broken/")
        assert status == 500 and "RuntimeError: this page is broken on purpose" in body["error"]
        status, body, _ = get(f"{base}/no/such/page")
        assert status == 404 and "/count/{word}/" in body["routes"]

        # The client library and an ASGI mount read through the same routing.
        with SyncClient(unique, broker=kafka_bootstrap) as client:
            table = client.table("word_counts")
            assert {w: table[w] for w in words} == expected
        monkeypatch.setenv("WORDCOUNT_APP_ID", unique)
        monkeypatch.setenv("BROKER_URL", f"kafka://{kafka_bootstrap}")
        program = importlib.reload(importlib.import_module("tests.programs.wordcount"))
        mounted = views(program.app)
        assert asyncio.run(asgi_get(mounted, words[1])) == (200, expected[words[1]])

        # SIGKILL a worker of the first host that owns a word: 503s or right answers. Once
        # every word is committed: a kill before that repeats the events after the last
        # commit (at least once), and their counts rightly grow.
        sources = [
            f"{unique}-words",
            f"{unique}-tests.programs.wordcount.count_words-word-repartition",
        ]
        wait_until_sync(
            lambda: committed(kafka_bootstrap, unique, sources) >= 2 * sum(sent.values()),
            60,
            "every word committed",
        )
        word = next(w for w in words if pids[w] in first.worker_pids().values())
        os.kill(pids[word], signal.SIGKILL)
        ok, _ = check_lookups(urls, expected, time.monotonic() + 60)
        assert ok > 0
        assert owner_pids(urls, [word])[word] != pids[word]

        # A handover: the second host stops; the first takes its partitions (and state).
        assert second.stop() == 0, second.log()
        check_lookups(urls[:1], expected, time.monotonic() + 60)
        status, body, _ = get(f"{urls[0]}/router")
        assert body["partitions"] == [0, 1, 2, 3] and len(body["hosts"]) == 1
    finally:
        outputs.close()
        if second is not None:
            second.stop()
        assert first.stop() == 0, first.log()


async def asgi_get(asgi: Any, word: str) -> tuple[int, Any]:
    """GET /shoal/table/word_counts/<word> of an ASGI app mounted at /shoal, as a server
    calls it."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/shoal/table/word_counts/{word}",
        "root_path": "/shoal",
        "query_string": b"",
        "headers": [],
    }
    await asgi(scope, receive, send)
    await asgi.close()
    start, body = sent
    return start["status"], json.loads(body["body"])
