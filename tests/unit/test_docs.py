"""The README's reference tables are the code's: regenerate them and nothing changes."""

from __future__ import annotations

from pathlib import Path

from smartplace.docs import GENERATED, refresh

README = Path(__file__).parents[2] / "README.md"


def test_every_generated_block_is_in_the_readme_and_current() -> None:
    text = README.read_text()
    for name in GENERATED:
        assert f"<!-- generated:{name} -->" in text, f"README lacks the {name} table"
    assert refresh(text) == text, "README tables are stale: run scripts/readme-tables"
