"""The collector as `python -m workshop collector` runs it: a large journal loads while the store answers."""

from __future__ import annotations

import errno
import json
import os
import time

import requests

from workshop.tracestore import model
from workshop.tracestore.collector import CollectorConfig, running_collector

SPANS = 3000


def line(n: int) -> bytes:
    span = model.span(f"{n:016x}", f"{n:016x}", "loaded", [], 1_700_000_000_000_000 + n, 5, [], [])
    return json.dumps({"span": span, "process": model.process("from-the-journal", [])}).encode() + b"\n"


def open_for_writing(path, timeout: float = 10.0) -> int:
    """The FIFO's writing end, once its reader (the store) has opened it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:  # ENXIO: nobody reads it yet
            assert error.errno == errno.ENXIO and time.monotonic() < deadline, error
            time.sleep(0.02)


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return found


def test_the_store_answers_while_its_journal_loads_and_receives_once_it_has(tmp_path):
    """The journal is a FIFO here, so the test decides how far the load has come: no race with the clock."""
    journal = tmp_path / "traces.jsonl"
    os.mkfifo(journal)
    config = CollectorConfig.on_free_ports(journal=journal)
    with running_collector(config, load_first=False) as collector:
        stats = lambda: requests.get(collector.url + "/api/stats", timeout=5).json()  # noqa: E731
        writer = open_for_writing(journal)
        os.set_blocking(writer, True)
        try:
            os.write(writer, b"".join(line(n) for n in range(1, 1001)))
            loading = wait_for(lambda: (s := stats())["journal"]["spans"] >= 896 and s["journal"])
            assert loading["loading"] is True and loading["done"] is False
            assert requests.get(collector.url + "/api/services", timeout=5).json()["data"] == ["from-the-journal"]
            os.write(writer, b"".join(line(n) for n in range(1001, SPANS + 1)))
        finally:
            os.close(writer)
        done = wait_for(lambda: (s := stats())["journal"]["done"] and s)
        assert done["journal"]["spans"] == SPANS and done["journal"]["loading"] is False and done["traces"] == SPANS
        export = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab" * 16, "spanId": "cd" * 8}]}]}]}
        url = f"http://127.0.0.1:{collector.otlp_http_port}/v1/traces"
        answer = requests.post(url, json=export, timeout=5)  # receiving, now that the journal is loaded
        assert answer.status_code == 200 and collector.store.get("ab" * 16) is not None
    assert journal.is_file() and len(journal.read_bytes().splitlines()) == SPANS + 1  # compacted, with the new one


def test_docs_must_be_a_folder(tmp_path, capsys):
    from workshop.cli import main

    assert main(["collector", "--docs", str(tmp_path / "nowhere")]) == 2  # before any port is bound
    said = capsys.readouterr().err
    assert said.startswith(f"error: --docs {tmp_path / 'nowhere'}: not a folder"), said
