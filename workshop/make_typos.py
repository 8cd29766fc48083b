"""`make <a target that does not exist>`: the Makefile's catch-all rule asks here for the nearest target.

The standard library only: it runs before `make setup` too (`python3 -m workshop.make_typos`).
"""

from __future__ import annotations

import difflib
import re
import sys


def suggestion(typed: str, targets: list[str]) -> str:
    """What to say about `make <typed>`, given the Makefile's targets."""
    folder = re.fullmatch(r"(step\d+)_\w+", typed)
    if folder and folder.group(1) in targets:
        return f"{typed} is lesson {folder.group(1)[4:]}'s folder; to run it: make {folder.group(1)}"
    lessons = [t for t in targets if re.fullmatch(r"step\d+", t)]
    number = re.fullmatch(r"(?:diff-)?step(\d+)", typed.lower())
    if number and typed.lower() not in targets and lessons:
        return f"no target '{typed}': the lessons are {lessons[0]} .. {lessons[-1]}"
    near = difflib.get_close_matches(typed.lower(), targets, n=1, cutoff=0.6)
    if near:
        return f"no target '{typed}'. Did you mean: make {near[0]}"
    return f"no target '{typed}'"


def main(argv: list[str]) -> int:
    typed, targets = argv[0], argv[1:]
    print(f"make: {suggestion(typed, targets)}", file=sys.stderr)
    print("make help lists every target.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
