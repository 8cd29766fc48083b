"""`make doctor` = `python -m workshop.doctor [--json] [--python PYTHON]`: exit 0 when every lesson can run."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from workshop.doctor import checks as c
from workshop.doctor.report import blocked_lessons, json_report, printable, room_report, text_report, wrapped
from workshop.lessons.stages import all_stages


def run_checks(python: str) -> list[c.Check]:
    venv = c.check_venv()
    ports = c.lesson_ports()
    query_port = next(port for endpoint, port, _ in ports.tcp if endpoint.name == "query")
    jaeger = c.jaeger_answering(query_port)
    node = c.check_node()
    traefik = c.check_traefik()
    installed = {"venv": venv.ok, "traefik": traefik.ok, "node": all(check.ok for check in node)}
    return [
        c.check_python(python, c.venv_python_version() if venv.ok else None),
        c.check_make(),
        venv,
        c.check_disk(installed),
        c.check_trace_store(query_port),
        *c.check_ports(ports, jaeger),
        c.check_redis(),
        *node,
        traefik,
        *c.check_docker(),
    ]


def workshop_commit() -> str | None:
    """The clone's commit (short), if git is here and this is a clone."""
    found = c._run(["git", "rev-parse", "--short", "HEAD"])
    return found.stdout.strip() if found is not None and found.returncode == 0 else None


def read_room(paths: list[str]) -> dict[str, dict]:
    documents = {}
    for path in paths:
        try:
            documents[Path(path).stem] = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            documents[Path(path).stem] = {"ok": False, "summary": f"✗ unreadable: {error}"}
    return documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make doctor", description="Is this laptop ready for every lesson?")
    parser.add_argument("--json", action="store_true", help="the results as JSON (for a host collecting the room's)")
    parser.add_argument(
        "--python",
        default=os.environ.get("PYTHON") or "python3",
        help="the Python `make setup` makes the venv with (default: $PYTHON, or python3)",
    )
    parser.add_argument("--room", nargs="+", metavar="FILE", help="a host's summary of the room's JSON results")
    args = parser.parse_args(argv)
    if args.room:
        documents = read_room(args.room)
        print(printable(room_report(documents)))
        return 0 if all(document.get("ok") for document in documents.values()) else 1
    lessons = [stage.number for stage in all_stages()]
    results = run_checks(args.python)
    if args.json:
        print(json_report(results, lessons, workshop_commit()))
    else:
        text = printable(text_report(results, lessons))
        print(wrapped(text, shutil.get_terminal_size().columns) if sys.stdout.isatty() else text)
    return 1 if blocked_lessons(results, lessons) else 0


if __name__ == "__main__":
    sys.exit(main())
