"""The lessons' READMEs as pages, when the store is told where they are (`collector --docs <folder>`, which
`make stepN` sets to the repository): `/docs/step5_queue/README.md`. The trace doctor's findings link the
lesson that fixes what they found there. Markdown files only, under that folder only."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template
from markdown_it import MarkdownIt

DOCS = "workshop.trace_store_docs"  # in app.extensions: the folder the pages come from, or None
MAX_BYTES = 1_000_000

_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML in a README is shown as text


def docs_folder() -> Path | None:
    return current_app.extensions.get(DOCS)


def lesson_url(readme: str) -> str | None:
    """Where a README (`step5_queue/README.md`) is served, or None when the store serves no docs."""
    return f"/docs/{readme}" if docs_folder() is not None else None


def find_doc(path: str) -> tuple[Path | None, str]:
    """The Markdown file `path` names under the docs folder, or None and why not (a 404's message)."""
    folder = docs_folder()
    if folder is None:
        return None, "This store serves no docs: the lessons' READMEs are in the repository (collector --docs)."
    if not path.endswith(".md"):
        return None, f"Only Markdown files (.md) are served here, not {path!r}."
    try:
        found = (folder / path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None, f"No document {path!r} here."
    if not found.is_relative_to(folder) or not found.is_file() or found.stat().st_size > MAX_BYTES:
        return None, f"No document {path!r} here."
    return found, ""


def render_doc(found: Path) -> str:
    text = found.read_text(encoding="utf-8", errors="replace")
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), found.name)
    folder = docs_folder()
    assert folder is not None
    return render_template(
        "doc.html", title=title, path=found.relative_to(folder).as_posix(), body=_markdown.render(text)
    )
