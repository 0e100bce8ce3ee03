"""Command-line help that reads well in a terminal, for every ``python -m devtools…`` command.

The commands take their description from their module docstring, which is written for readers of
the code (reST: ``code``, ``::`` before an example). ``plain`` turns it into terminal text, and
``HelpFormatter`` keeps its line breaks and appends each option's default where one is set.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

__all__ = ["HelpFormatter", "interpreter", "parser", "plain"]

_LITERAL = re.compile(r"``([^`]+)``")
_INTERPRETED = re.compile(r"(?<![`\w])`([^`]+)`(?![`\w])")
_ITEM = re.compile(r"^(\s*(?:[-*]|\d+\.)\s+)")


def plain(docstring: str | None) -> str:
    """The docstring as terminal text: ``x`` and `x` become x, a lone ``::`` goes, a closing ``::`` becomes ``:``."""
    lines = []
    for raw in (docstring or "").strip("\n").splitlines():
        if raw.strip() == "::":
            continue
        line = raw.rstrip()[:-1] if raw.rstrip().endswith("::") else raw
        lines.append(_INTERPRETED.sub(r"\1", _LITERAL.sub(r"\1", line)))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Paragraphs and list items are wrapped to the terminal, indented examples kept as written; an option's
    help ends with its default when it has a meaningful one."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = [line for line in block.splitlines() if line.strip()]
            if all(line.startswith("    ") for line in lines):
                blocks.append("\n".join(indent + line for line in lines))
                continue
            items: list[list[str]] = []
            for line in lines:
                if _ITEM.match(line) or not items:
                    items.append([line])
                else:
                    items[-1].append(line.strip())
            wrapped = []
            for item in items:
                marker = _ITEM.match(item[0])
                hanging = " " * len(marker.group(1)) if marker else ""
                wrapped.append(textwrap.fill(" ".join(item), width, initial_indent=indent,
                                             subsequent_indent=indent + hanging))
            blocks.append("\n".join(wrapped))
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, [], argparse.SUPPRESS) and "default" not in text
        if shown and text and (action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)):
            text += " (default: %(default)s)"
        return text


def interpreter() -> str:
    """How to name this Python in a command to copy: relative when under the working folder (``.venv/bin/python``).

    A bare ``python`` in a fresh shell is not the project's virtual environment and cannot import azure.
    """
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return str(executable)


def parser(module: str, docstring: str | None, **options: Any) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` for ``python -m module`` whose description is ``docstring`` as terminal text."""
    return argparse.ArgumentParser(prog=f"{interpreter()} -m {module}", description=plain(docstring),
                                   formatter_class=HelpFormatter, **options)
