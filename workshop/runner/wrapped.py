"""A line for the learner's terminal, wrapped here between words (a later line indented under the first),
with no padding at the end of a line: what rich's own wrapping leaves. And a command, never wrapped."""

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


def say_command(console: Console, label: str, command: str, style: str = "", below: bool = False) -> None:
    """`label command` on one line if it fits the terminal (and not `below`), else the label and, under it,
    the command: whole either way (a learner copies it; a link cut in two opens nothing). No label: the
    command alone, indented."""
    line = f"  {label} {command}"
    if below or not label or len(line) > console.width:
        if label:
            console.print(f"  {label}", markup=False, highlight=False, style=style)
        line = f"    {command}"
    console.print(line, markup=False, highlight=False, style=style, no_wrap=True, overflow="ignore", crop=False)
