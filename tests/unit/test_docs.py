"""The README's reference tables are the code's: regenerate them and nothing changes."""

from __future__ import annotations

from pathlib import Path

from smartplace.cli_reference import cli_markdown
from smartplace.docs import GENERATED, refresh

README = Path(__file__).parents[2] / "README.md"
CLI_REFERENCE = Path(__file__).parents[2] / "docs" / "cli.md"


def test_every_generated_block_is_in_the_readme_and_current() -> None:
    text = README.read_text()
    for name in GENERATED:
        assert f"<!-- generated:{name} -->" in text, f"README lacks the {name} table"
    assert refresh(text) == text, "README tables are stale: run scripts/readme-tables"


def test_cli_reference_is_the_typer_apps_own_help() -> None:
    text = cli_markdown()
    assert CLI_REFERENCE.read_text() == text, "docs/cli.md is stale: run scripts/readme-tables"
    # Every command is there, down to the sub-commands, with its options.
    assert "## `smartplace devices add`" in text
    assert "| `--kind` (required) | - | air_quality, footfall or bin. |" in text
