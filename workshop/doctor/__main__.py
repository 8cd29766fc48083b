"""`make doctor` = `python -m workshop.doctor [--json] [--python PYTHON]`: exit 0 when every lesson can run."""

from __future__ import annotations

import argparse
import os
import sys

from workshop.doctor import checks as c
from workshop.doctor.report import blocked_lessons, json_report, printable, text_report
from workshop.lessons.stages import all_stages


def run_checks(python: str) -> list[c.Check]:
    venv = c.check_venv()
    ports = c.lesson_ports()
    query_port = next(port for variable, port, _ in ports.tcp if variable == "JAEGER_QUERY_PORT")
    jaeger = c.jaeger_answering(query_port)
    node = c.check_node()
    traefik = c.check_traefik()
    installed = {"venv": venv.ok, "traefik": traefik.ok, "node": all(check.ok for check in node)}
    return [
        c.check_python(python, venv.ok),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make doctor", description="Is this laptop ready for every lesson?")
    parser.add_argument("--json", action="store_true", help="the results as JSON (for a host collecting the room's)")
    parser.add_argument("--python", default=os.environ.get("PYTHON") or "python3",
                        help="the Python `make setup` makes the venv with (default: $PYTHON, or python3)")  # fmt: skip
    args = parser.parse_args(argv)
    lessons = [stage.number for stage in all_stages()]
    results = run_checks(args.python)
    print(json_report(results, lessons) if args.json else printable(text_report(results, lessons)))
    return 1 if blocked_lessons(results, lessons) else 0


if __name__ == "__main__":
    sys.exit(main())
