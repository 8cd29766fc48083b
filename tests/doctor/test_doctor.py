"""`make doctor` as a learner runs it: in a network namespace of its own, so the lessons' default ports
are this test's to take (or to leave free), whatever else runs on this machine."""

from __future__ import annotations

import json
import stat

from tests.netns import require_own_network, run_in_own_network
from tests.stage_loader import ROOT
from workshop.doctor.checks import Check
from workshop.doctor.report import line, summary

TIMEOUT = 60


def doctor(script: str = "make doctor"):
    require_own_network()
    return run_in_own_network(script, cwd=ROOT, timeout=TIMEOUT)


def test_this_machine_passes_and_says_so_in_json_too():
    result = doctor('make doctor; echo "exit $?"; make doctor JSON=1')
    text, document = result.stdout.split("exit 0\n")
    lines = text.splitlines()
    assert lines[-1] == "✓ every lesson (1–9) can run here", result.stdout + result.stderr
    items = ("Python", "make", "venv", "disk", "Redis", "Node.js", "npm packages", "Traefik", "Docker (optional)")
    for item in items:
        assert any(text[2:].startswith(item + ":") for text in lines), item
    ports = [text for text in lines if text[2:].startswith("port ")]
    assert len(ports) == 11 and all(text.startswith("✓") for text in ports), ports
    assert "✓ port 6831/udp: free (JAEGER_AGENT_PORT)" in lines
    # a host collecting the room's results
    document = json.loads(document)
    assert document["ok"] is True and result.returncode == 0
    assert set(document["lessons"]) == {str(n) for n in range(1, 10)}
    assert all(lesson == {"can_run": True, "blocked_by": []} for lesson in document["lessons"].values())
    assert {"item", "ok", "detail", "fix", "blocks", "optional"} == set(document["checks"][0])
    assert len(document["checks"]) == len(lines) - 1 and document["summary"] == lines[-1]


def test_a_taken_port_names_the_port_its_variable_and_its_holder():
    script = """
python3 -m http.server 8480 --bind 127.0.0.1 >/dev/null 2>&1 &
python3 -c 'import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 6831)); \
  time.sleep(60)' &
sleep 1
make doctor || echo "exit $?"
"""
    result = doctor(script)
    lines = result.stdout.splitlines()
    tcp = next(text for text in lines if "port 8480/tcp" in text)
    assert tcp.startswith("✗ port 8480/tcp: taken (APP_PORT), by pid ") and "http.server 8480" in tcp, tcp
    assert tcp.endswith("Fix: stop it, or move the lessons' port: APP_PORT=<free port> make stepN"), tcp
    udp = next(text for text in lines if "port 6831/udp" in text)
    assert udp.startswith("✗ port 6831/udp: taken (JAEGER_AGENT_PORT), by pid ") and "socket" in udp, udp
    last = "✗ no lesson can run: 1 can't (port 8480/tcp); 2–9 can't (port 8480/tcp, port 6831/udp)"
    assert lines[-2:] == [last, "exit 2"]  # make's exit code when a recipe fails


def test_a_python_too_old_is_named_with_one_to_use(tmp_path):
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\necho 3.9.18\n")  # answers the doctor's version question as a Python 3.9 does
    old.chmod(old.stat().st_mode | stat.S_IXUSR)
    result = doctor(f"make doctor PYTHON={old} || true")
    python = result.stdout.splitlines()[0]
    said = f"✗ Python: PYTHON={old} is Python 3.9.18; the lessons need 3.10–3.13. Fix: make setup PYTHON=python3."
    assert python.startswith(said), python


def test_the_last_line_groups_the_lessons_by_what_stops_them():
    checks = [
        Check("Redis", False, "none", "make setup", (5, 6, 7, 8, 9)),
        Check("Traefik", False, "none", "make prepare", (9,)),
        Check("Docker (optional)", False, "none", optional=True),
    ]
    assert summary(checks, list(range(1, 10))) == "✗ lessons 1–4 can run; 5–8 can't (Redis); 9 can't (Redis, Traefik)"
    assert line(checks[1]) == "✗ Traefik: none. Fix: make prepare"
    assert summary(checks[2:], [1, 2]) == "✓ every lesson (1–2) can run here"
