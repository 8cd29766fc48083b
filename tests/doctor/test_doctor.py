"""`make doctor` as a learner runs it: in a network namespace of its own, so the lessons' default ports
are this test's to take (or to leave free), whatever else runs on this machine."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

from tests.support.ci import require
from tests.support.netns import repository_copy, require_own_network, run_in_own_network
from tests.support.stage_loader import ROOT
from workshop.doctor.__main__ import main as doctor_main

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
    # HOSTS.md's table of the room's failures is indexed by the doctor's lines: every item is there
    hosts = (ROOT / "HOSTS.md").read_text()
    for check in document["checks"]:
        if check["item"] == "trace store":
            continue  # never a failure: a Jaeger already running is used, and none is fine too
        item = "port" if check["item"].startswith("port ") else check["item"]
        assert f"| `✗ {item}" in hosts, item


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


def python39() -> str | None:
    """A real, working Python 3.9 on this machine (pyenv's, or python3.9 on PATH), if there is one."""
    candidates = [*sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python3")), shutil.which("python3.9")]
    for candidate in filter(None, candidates):
        version = subprocess.run([str(candidate), "--version"], capture_output=True, text=True, timeout=10)
        if version.returncode == 0 and version.stdout.startswith("Python 3.9."):
            return str(candidate)
    return None


def test_a_python_too_old_is_named_with_one_to_use(tmp_path):
    old = python39()
    if old is None:  # then one that answers the doctor's version question as a Python 3.9 does
        fake = tmp_path / "python3.9"
        fake.write_text("#!/bin/sh\necho 3.9.18\n")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        old = str(fake)
    result = doctor(f"make doctor PYTHON={old} || true")
    python = result.stdout.splitlines()[0]
    # with a working .venv, its Python is what runs the lessons: PYTHON only matters for a new one
    assert python.startswith("✓ Python: Python 3.") and f"(PYTHON={old} is Python 3.9." in python, python
    assert python.endswith("; a new .venv would need PYTHON=python3." + python.split("python3.")[-1])


def test_before_setup_the_doctor_runs_on_the_python_it_is_given(tmp_path):
    """A fresh clone, no .venv: `make doctor` runs on PYTHON itself, a 3.9 as well as a 3.6."""
    repo = repository_copy(tmp_path / "repo", venv=False)
    old = python39()
    require(None if old else "needs a Python 3.9 (on PATH as python3.9, or under ~/.pyenv)", "this test")
    require_own_network()
    result = run_in_own_network(f"make doctor PYTHON={old} || echo exit $?", cwd=repo, timeout=TIMEOUT)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"✗ Python: PYTHON={old} is Python 3.9."), result.stdout + result.stderr
    assert (
        "✗ venv: .venv is not there yet. Fix: make setup (or make setup WHEELHOUSE=<folder> with no network)" in lines
    )
    assert lines[-2:] == [
        "✗ no lesson can run: 1–4 can't (Python, venv); 5–8 can't (Python, venv, Redis); "
        "9 can't (Python, venv, Redis, npm packages, Traefik)",
        "exit 2",
    ]
    ancient = Path(old).parent.parent.parent / "3.6.15/bin/python3"
    if ancient.exists():  # too old even for the doctor: the Makefile says so in one line, or in JSON
        script = f"make doctor PYTHON={ancient} || true; make doctor PYTHON={ancient} JSON=1 || true"
        result = run_in_own_network(script, cwd=repo, timeout=TIMEOUT)
        said = (
            f"✗ Python: PYTHON={ancient} is Python 3.6.15; the lessons need 3.10–3.13. "
            "Fix: install one, then make doctor PYTHON=python3.12"
        )
        assert result.stdout.splitlines()[0] == said
        assert json.loads(result.stdout.splitlines()[1]) == {"ok": False, "summary": said}


def test_a_host_summarises_the_room_s_json_results(tmp_path, capsys):
    ready = {"ok": True, "workshop": {"commit": "2b6aff9"}, "summary": "✓ every lesson (1–9) can run here"}
    late = {"ok": False, "workshop": {"commit": "7f1ae55"}, "summary": "✗ lessons 1–8 can run; 9 can't (Traefik)"}
    for name, document in (("ada", ready), ("grace", late)):
        (tmp_path / f"{name}.json").write_text(json.dumps(document))
    (tmp_path / "linus.json").write_text("not json")
    files = sorted(str(path) for path in tmp_path.iterdir())
    assert doctor_main(["--room", *files]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "grace (7f1ae55): ✗ lessons 1–8 can run; 9 can't (Traefik)",
        "ada (2b6aff9): ✓ every lesson (1–9) can run here",
        "1 of 2 laptops can run every lesson",
        "clones at 2 different commits: `git pull` on the older ones",
        "",
        "linus: ✗ unreadable: Expecting value: line 1 column 1 (char 0)",
    ]


def test_a_host_sees_the_room_s_exercise_from_make_check_json(tmp_path, capsys):
    """The same --room, over the files `make check-step4 JSON=1` wrote: the fewest tasks done first, and where
    each is; a workspace that did not start with where it fails; a doctor's file among them in a part of its own."""
    done = {"lesson": "step4", "ok": True, "done": 3, "summary": "all done: next, make exercise-step5"}
    stuck = {
        "lesson": "step4",
        "ok": False,
        "done": 2,
        "summary": "2 of 3 done: next, task 3",
        "first_failure": {"task": 3, "title": "the context crosses HTTP", "done": False, "problems": ["..."]},
    }
    broken = {
        "lesson": "step4",
        "ok": False,
        "started": False,
        "summary": "✗ your workspace did not start or answer",
        "errors": ["gateway: app.py, line 12: NameError: name 'tag' is not defined"],
    }
    ready = {"ok": True, "workshop": {"commit": "2b6aff9"}, "summary": "✓ every lesson (1–9) can run here"}
    for name, document in (("ada", done), ("grace", stuck), ("linus", broken), ("alan", ready)):
        (tmp_path / f"{name}.json").write_text(json.dumps(document))
    assert doctor_main(["--room", *sorted(str(path) for path in tmp_path.iterdir())]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "linus (step4): ✗ your workspace did not start or answer "
        "[gateway: app.py, line 12: NameError: name 'tag' is not defined]",
        "grace (step4): 2 of 3 done: next, task 3 (at task 3: the context crosses HTTP)",
        "ada (step4): all done: next, make exercise-step5",
        "1 of 3 learners have done every task of step4",
        "",
        "alan (2b6aff9): ✓ every lesson (1–9) can run here",
        "1 of 1 laptops can run every lesson",
    ]
