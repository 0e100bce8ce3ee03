"""Every devtools command's --help reads as terminal text: no reST markup, each option explained, a runnable prog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import devtools.bench.__main__ as bench
import devtools.emulator.__main__ as emulator
import devtools.funchost.__main__ as funchost
from devtools import queuectl, quickstart
from devtools.clihelp import HelpFormatter, plain

PARSERS: dict[str, Callable[[list[str]], Any]] = {
    "devtools.queuectl": queuectl._parse,
    "devtools.quickstart": quickstart._parse,
    "devtools.emulator": emulator._parse_args,
    "devtools.funchost": funchost._parse,
    "devtools.bench": bench._parse,
}
COMMANDS = [["--help"], ["send", "--help"], ["follow", "--help"]]


def _helps(name: str, capsys: pytest.CaptureFixture[str]) -> Iterator[str]:
    for command in COMMANDS if name == "devtools.queuectl" else COMMANDS[:1]:
        with pytest.raises(SystemExit) as exited:
            PARSERS[name](command)
        assert exited.value.code == 0
        yield capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_help_is_plain_text_with_every_option_explained(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    for text in _helps(name, capsys):
        assert f"python -m {name} " in text.splitlines()[0]  # the venv's, as run: .venv/bin/python from the root
        assert "``" not in text
        assert not any(line.strip() == "::" or line.rstrip().endswith("::") for line in text.splitlines())
        options = text[text.index("options:"):]
        for line in options.splitlines()[2:]:  # after "-h, --help"
            if line.startswith("  -"):
                flag, _, rest = line.strip().partition("  ")
                assert rest.strip() or _next_line_explains(options, line), f"{name}: {flag} has no help"
        assert text.count("(default:") == len(set(_default_lines(text))), "a default said twice"


def _next_line_explains(options: str, line: str) -> bool:
    lines = options.splitlines()
    following = lines[lines.index(line) + 1] if lines.index(line) + 1 < len(lines) else ""
    return following.startswith(" " * 10) and bool(following.strip())


def _default_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "(default:" in line]


def test_plain_turns_rest_into_terminal_text() -> None:
    doc = '''Run ``x`` with `y`.

::

    python -m x --flag

An example follows::

    more
'''
    assert plain(doc) == "Run x with y.\n\n    python -m x --flag\n\nAn example follows:\n\n    more"


def test_the_formatter_wraps_paragraphs_and_items_but_keeps_examples() -> None:
    formatter = HelpFormatter(prog="p", width=40)
    formatter.add_text(
        "A paragraph that is long enough to be wrapped at a narrow width, twice over.\n\n"
        "- an item that is also long enough to wrap\n  onto a second line\n- a second item\n\n"
        "    an example line that must stay exactly as it is, however long it may be")

    text = formatter.format_help()

    assert "    an example line that must stay exactly as it is, however long it may be" in text
    assert all(len(line) <= 40 for line in text.splitlines() if not line.startswith("    an example"))
    assert "- an item that is also long enough to\n  wrap onto a second line\n- a second item" in text
