"""The store's journal: a JSON-lines file with one stored span a line, `{"span": ..., "process": ...}`.

Appended to span by span, replaced now and then by a compacted copy written beside it. A journal is read
back at start, and a file is input from outside: each line is checked field by field, and a line that
cannot be read (torn, too long, not UTF-8, not JSON, not a span) is skipped, never trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from workshop.tracestore import model
from workshop.tracestore.model import REFERENCE_TYPES, Json, SpanRecord

MAX_JOURNAL_LINE = 1 << 20  # bytes; a span from one datagram (64 KiB) is far shorter
# what each tag type's value may be in JSON (bool is an int in Python: it is told apart below)
VALUE_KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bool": (bool,),
    "int64": (int, str),
    "float64": (float, int),
    "binary": (str,),
}


PROGRESS_LINES = 1024  # how often a reload says how far it has read


@dataclass
class Loading:
    """How far the reload of a journal has come: the store answers queries meanwhile, with what it holds."""

    path: str
    size_bytes: int
    read_bytes: int = 0
    spans: int = 0
    done: bool = False
    cancelled: bool = False  # the store is closing: stop reading
    on_progress: Callable[[Loading], None] | None = field(default=None, repr=False, compare=False)

    @property
    def percent(self) -> int:
        return 100 if self.done else int(100 * self.read_bytes / self.size_bytes) if self.size_bytes else 0

    def figures(self) -> dict:
        """As /api/stats shows it."""
        keys = ("path", "size_bytes", "read_bytes", "spans", "done")
        return {key: getattr(self, key) for key in keys} | {"loading": not self.done, "percent": self.percent}


def journal_line(span: bytes, process: bytes) -> bytes:
    """The line for a span and its process, each already compact JSON."""
    return b'{"span":' + span + b',"process":' + process + b"}\n"


class Journal:
    """The JSON-lines file: appended to span by span, replaced now and then by a compacted copy."""

    def __init__(self, path: Path):
        self.path = path
        self.lines = 0  # in the file
        self._file: BinaryIO | None = None

    def append(self, lines: list[bytes]) -> None:
        if self._file is None:
            raise OSError(f"{self.path} is not open")
        self._file.write(b"".join(lines))
        self._file.flush()
        self.lines += len(lines)

    def write_temporary(self, lines: Iterable[bytes]) -> tuple[str, int]:
        """A new file beside the journal holding `lines`: its name and line count."""
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        count = 0
        try:
            with os.fdopen(handle, "wb") as out:
                for line in lines:
                    out.write(line)
                    count += 1
        except BaseException:
            remove(name)
            raise
        return name, count

    def install(self, temporary: tuple[str, int], pending: list[bytes]) -> None:
        """Make `temporary` plus `pending` (lines appended since it was begun) the journal, and append to it."""
        name, lines = temporary
        with open(name, "ab") as out:
            out.write(b"".join(pending))
        os.replace(name, self.path)
        self.close()
        self._file = self.path.open("ab")
        self.lines = lines + len(pending)

    def remove_stale_copies(self) -> list[str]:
        """Compacted copies a store killed mid-compaction left beside the journal (mkstemp's names: the
        journal's name, 8 random characters, .tmp): removed; their names. No other file is touched."""
        own = re.compile(re.escape(self.path.name) + r"[a-z0-9_]{8}\.tmp")
        stale = [p for p in self.path.parent.glob(glob_escape(self.path.name) + "*.tmp") if own.fullmatch(p.name)]
        for path in stale:
            remove(str(path))
        return [path.name for path in stale]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_journal(path: Path, loading: Loading | None = None) -> Iterator[SpanRecord | None]:
    """Each line of the journal at `path` as the span and process it holds, or None for a line that holds none.
    `loading`, if given, is kept up to date with how many bytes have been read."""
    read = 0
    with path.open("rb") as lines:
        for number, (line, size) in enumerate(_lines(lines), 1):
            read += size
            if loading is not None and number % PROGRESS_LINES == 0:
                loading.read_bytes = read
            yield record_of(line)
    if loading is not None:
        loading.read_bytes = read


def _lines(file: BinaryIO) -> Iterator[tuple[bytes | None, int]]:
    """Each line of `file` and its size; None for a line longer than MAX_JOURNAL_LINE, skipped without being
    read whole. (The sizes, not the file's position: a journal may be a pipe.)"""
    while line := file.readline(MAX_JOURNAL_LINE + 1):
        if len(line) > MAX_JOURNAL_LINE and not line.endswith(b"\n"):
            size = len(line)
            while line and not line.endswith(b"\n"):
                line = file.readline(MAX_JOURNAL_LINE + 1)
                size += len(line)
            yield None, size
        else:
            yield line, len(line)


def record_of(line: bytes | None) -> SpanRecord | None:
    """The span and process a journal line holds, checked field by field; None if it holds none."""
    if line is None:
        return None
    try:
        entry = json.loads(line.decode("utf-8"))
        if not isinstance(entry, dict):
            return None
        return checked_span(entry.get("span")), checked_process(entry.get("process"))
    except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def glob_escape(name: str) -> str:
    return re.sub(r"([*?[])", r"[\1]", name)


def remove(name: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(name)


# --- a span read back: untrusted, checked field by field -------------------------------------------------


def checked_span(value: Any) -> Json:
    """`value` as a span of the model; ValueError if it is not one."""
    found = _object(value, "span")
    return model.span(
        _string(found.get("traceID"), "traceID"),
        _string(found.get("spanID"), "spanID"),
        _string(found.get("operationName"), "operationName"),
        [_reference(ref) for ref in _array(found.get("references"), "references")],
        _integer(found.get("startTime"), "startTime"),
        _integer(found.get("duration"), "duration"),
        [checked_tag(entry) for entry in _array(found.get("tags"), "tags")],
        [_log(entry) for entry in _array(found.get("logs"), "logs")],
        flags=_integer(found["flags"], "flags") if found.get("flags") else 0,
    )


def checked_process(value: Any) -> Json:
    found = _object(value, "process")
    return model.process(
        _string(found.get("serviceName"), "serviceName"),
        [checked_tag(entry) for entry in _array(found.get("tags"), "process tags")],
    )


def checked_tag(value: Any) -> Json:
    found = _object(value, "tag")
    key, kind, content = _string(found.get("key"), "tag key"), found.get("type"), found.get("value")
    if not isinstance(kind, str) or kind not in VALUE_KINDS:
        raise ValueError(f"tag {key!r}: unknown type {kind!r}")
    if not isinstance(content, VALUE_KINDS[kind]) or isinstance(content, bool) != (kind == "bool"):
        raise ValueError(f"tag {key!r}: a {kind} tag cannot hold {type(content).__name__}")
    if isinstance(content, float):
        return model.float_tag(key, content)
    return model.tag(key, kind, content)


def _reference(value: Any) -> Json:
    ref = _object(value, "reference")
    if ref.get("refType") not in REFERENCE_TYPES:
        raise ValueError(f"unknown reference type {ref.get('refType')!r}")
    return model.reference(
        ref["refType"], _string(ref.get("traceID"), "reference traceID"), _string(ref.get("spanID"), "reference spanID")
    )


def _log(value: Any) -> Json:
    entry = _object(value, "log")
    return model.log_entry(
        _integer(entry.get("timestamp"), "log timestamp"),
        [checked_tag(item) for item in _array(entry.get("fields"), "log fields")],
    )


def _object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _array(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    return value


def _integer(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} is not a whole number")
    return value
