"""A line for the learner's terminal, wrapped here between words (a later line indented under the first),
with no padding at the end of a line: what rich's own wrapping leaves."""

from __future__ import annotations

import textwrap

from rich.console import Console
from rich.markup import escape


def say_wrapped(
    console: Console, width: int, text: str, indent: int = 0, hang: int = 0, style: str = "", first: int = 0
):
    """`text` wrapped to the terminal's width, its later lines indented by `hang`; the first `first` characters
    (all, if 0) in `style`. Wrapped here, not by rich, so that no line ends in padding."""
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=" " * indent,
        subsequent_indent=" " * max(hang, indent),
        break_on_hyphens=False,
        break_long_words=False,
    ) or [""]
    head = lines[0]
    cut = indent + (first or len(head))
    styled = f"[{style}]{escape(head[:cut])}[/{style}]{escape(head[cut:])}" if style else escape(head)
    console.print(styled, soft_wrap=True, highlight=False)
    for line in lines[1:]:
        console.print(escape(line), soft_wrap=True, highlight=False)
