"""The CLI reference (docs/cli.md), generated from the Typer app so it cannot drift.

``scripts/readme-tables`` writes it; a test fails when the committed copy differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

CLI_REFERENCE_HEADER = (
    "# `smartplace` command reference\n\n"
    "Generated from the command's own help by `scripts/readme-tables`; do not edit by hand.\n"
    "Every command also answers `--help`. Settings (`SMARTPLACE_*`, `smartplace.toml`) are\n"
    "listed in the README's settings table.\n"
)


def cli_markdown() -> str:
    from smartplace.cli import app  # the CLI imports everything; only the docs need it

    root = typer.main.get_command(app)
    sections = [CLI_REFERENCE_HEADER]
    for path, command in _commands(root, ["smartplace"]):
        sections.append(_section(" ".join(path), command))
    return "\n".join(sections)


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    for name in sorted(subcommands):
        sub = subcommands[name]
        if not getattr(sub, "hidden", False):
            yield from _commands(sub, [*path, name])


def _section(name: str, command: Any) -> str:
    lines = [f"## `{name}`", "", _paragraphs(command.help or "")]
    params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        lines += ["", "| argument or option | default | meaning |", "|---|---|---|"]
        for param in params:
            lines.append(f"| {_names(param)} | {_default(param)} | {_one_line(param.help or '')} |")
    return "\n".join(lines) + "\n"


def _names(param: Any) -> str:
    if type(param).__name__.endswith("Argument"):
        return f"`{param.name.upper()}`" + ("" if param.required else " (optional)")
    names = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
    return names + (" (required)" if param.required else "")


def _default(param: Any) -> str:
    default = param.default
    if param.required or default is None or callable(default):
        return "-"
    if isinstance(default, bool) and getattr(param, "is_flag", False):
        return "on" if default else "off"
    if isinstance(default, list | tuple):
        return ", ".join(f"`{item}`" for item in default) or "-"
    return f"`{default}`"


def _paragraphs(text: str) -> str:
    """Typer's help with its line breaks folded, paragraphs kept; Rich markup dropped."""
    paragraphs = [" ".join(block.split()) for block in text.strip().split("\n\n")]
    return "\n\n".join(p.replace("\b", "").strip() for p in paragraphs if p.strip())


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
