"""The README and docs/*.md hold only commands that parse, Python that compiles, links that resolve.

Every `alexnet ...` line of a fenced `bash` block is parsed by the real command-line parser
(`alexnet_lab.cli.main.build_parser`); synopsis lines (with `[...]` or `...`) are checked for their
command, their `--flags` and the listed choices of each flag, and so are the `alexnet ...` spans of
the prose. Every fenced `python` block is
compiled, not run. Every relative link (and its #anchor) points at a file that exists. The README
stays a front door: at most README_MAX_LINES lines. No subprocess, no framework import.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 320
FRAMEWORKS = ("torch", "torchvision", "tensorflow", "keras")
# Pages linked from the README that another change is writing; a link to one may dangle until it lands.
PENDING_PAGES: set[Path] = set()

FENCE = re.compile(r"^(\s*)```(\w*)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*alexnet\s")  # env assignments may come first
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
FLAG_CHOICES = re.compile(r"(--[a-z][a-z0-9-]*)[ =]([\w.-]+(?:\|[\w.-]+)+)")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
MODULE_RUN = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:torchrun|python\S*)\s(?:\S+\s+)*?-m alexnet_lab\s")


def _blocks(page: Path) -> list[tuple[str, int, list[str]]]:
    """(language, first line number, lines) of each fenced block of a page."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if match and lang is None:
            lang, start, body = match.group(2), number + 1, []
        elif match:
            blocks.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def _prose(page: Path) -> str:
    """A page's text outside its fenced blocks and inline code."""
    return re.sub(r"`[^`]*`", "", _prose_with_code(page))


def _prose_with_code(page: Path) -> str:
    """A page's text outside its fenced blocks, inline code kept."""
    kept, fenced = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def _command_lines(lines: list[str]) -> list[str]:
    """The `alexnet` lines of a bash block: backslash continuations joined, and the indented
    continuation lines of a synopsis (`    [--flag X]`) appended to the command they continue."""
    joined, pending = [], ""
    for line in lines:
        if pending:
            pending += " " + line.strip()
        elif joined and line[:1].isspace() and line.strip()[:1] in ("[", "-") and COMMAND.match(joined[-1]):
            joined[-1] += " " + line.strip()
            continue
        else:
            pending = line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        joined.append(pending)
        pending = ""
    # `torchrun ... -m alexnet_lab train ...` and `python -m alexnet_lab ...` run the same parser
    joined = [MODULE_RUN.sub("alexnet ", line) for line in joined]
    return [line for line in joined if COMMAND.match(line)]


def _without_comment(line: str) -> str:
    return re.split(r"\s#\s|\s#$", line, maxsplit=1)[0].strip()


def _cases(language: str) -> list[tuple[str, str]]:
    cases = []
    for page in PAGES:
        for lang, start, body in _blocks(page):
            if lang != language:
                continue
            name = f"{page.relative_to(ROOT)}:{start}"
            if language == "python":
                cases.append((name, "\n".join(body)))
            else:
                cases.extend((name, line) for line in _command_lines(body))
    return cases


@pytest.fixture(scope="module")
def subcommands() -> dict[str, argparse.ArgumentParser]:
    from alexnet_lab.cli.main import build_parser

    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"": parser, **actions[0].choices}


def _options(sub: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in sub._actions for option in action.option_strings}


def test_the_parser_imports_no_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs first: the module imports the CLI only here and in the fixture, so every import the CLI
    # makes (at import time or inside build_parser) passes through the spy.
    requested: list[str] = []
    real_import = builtins.__import__

    def spy(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] in FRAMEWORKS:
            requested.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", spy)
    from alexnet_lab.cli.main import build_parser

    build_parser()
    monkeypatch.undo()
    assert not requested, f"building the parser imported {sorted(set(requested))}"


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move the detail into a page of docs/"
    )


def test_the_commands_are_found() -> None:
    # A fence the extraction misses would make every other test here pass vacuously.
    assert len(_cases("bash")) >= 40 and len(_cases("python")) >= 5


@pytest.mark.parametrize(("where", "line"), _cases("bash"), ids=lambda value: str(value)[:60])
def test_every_alexnet_command_parses(where: str, line: str, subcommands: dict[str, argparse.ArgumentParser]) -> None:
    command = _without_comment(line)
    words = command[command.index("alexnet ") :].split()
    known = len(words) > 1 and words[1] in subcommands
    assert known, f"{where}: no command {words[1:2]} in `{line}` (commands: {sorted(subcommands)[1:]})"
    sub = subcommands[words[1]]
    options = _options(sub)
    unknown = [flag for flag in FLAG.findall(command) if flag not in options]
    assert not unknown, f"{where}: `alexnet {words[1]}` has no {unknown} (in `{line}`)"
    for flag, listed in FLAG_CHOICES.findall(command):
        choices = options[flag].choices
        if choices is not None and options[flag].nargs != 0:
            wrong = [value for value in listed.split("|") if value not in {str(c) for c in choices}]
            assert not wrong, f"{where}: {flag} does not accept {wrong} (choices {list(choices)}) in `{line}`"
    if "..." in command or "[" in command or "|" in command:
        return  # a synopsis: its command, flags and choices are checked above
    tokens = shlex.split(command[command.index("alexnet ") :])[1:]
    for i, token in enumerate(tokens[:-1]):  # placeholders (N, WEIGHTS) stand for typed values
        action = options.get(token)
        if action is not None and PLACEHOLDER.match(tokens[i + 1]):
            if action.choices:
                tokens[i + 1] = str(next(iter(action.choices)))
            elif action.type in (int, float):
                tokens[i + 1] = "1"
    from alexnet_lab.core.errors import AlexnetLabError

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            _, extra = subcommands[""].parse_known_args(tokens)
    except (AlexnetLabError, SystemExit) as exc:
        pytest.fail(f"{where}: `{line}` does not parse: {exc} {stderr.getvalue().strip()}")
    assert not extra, f"{where}: `{line}`: the parser does not know {extra}"


def _inline_commands() -> list[tuple[str, str]]:
    """`alexnet CMD --flag ...` spans of the prose (`alexnet predict/evaluate RUN` names two)."""
    return [
        (str(page.relative_to(ROOT)), span)
        for page in PAGES
        for span in re.findall(r"`(alexnet [^`]+)`", _prose_with_code(page).replace("\n", " "))
        if not PLACEHOLDER.match(span.split()[1])  # `alexnet COMMAND --help`
    ]


def test_every_inline_alexnet_command_names_real_flags(subcommands: dict[str, argparse.ArgumentParser]) -> None:
    spans = _inline_commands()
    assert len(spans) >= 30
    wrong = []
    for where, span in spans:
        for name in span.split()[1].split("/"):
            if name not in subcommands:
                wrong.append(f"{where}: no command {name!r} in `{span}`")
                continue
            options = _options(subcommands[name])
            wrong += [f"{where}: `alexnet {name}` has no {flag} (`{span}`)" for flag in FLAG.findall(span) if flag not in options]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("where", "source"), _cases("python"), ids=lambda value: str(value)[:60])
def test_every_python_block_compiles(where: str, source: str) -> None:
    compile(source, where, "exec")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    anchors, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(_prose(page)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if resolved in PENDING_PAGES and not resolved.exists():
            continue
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: links to nothing: {broken}"
