"""Fixtures for integration tests that need the registry enforced."""

from __future__ import annotations

import pytest

from smartplace.config import Settings


@pytest.fixture
def registered_settings(settings: Settings) -> Settings:
    """The test's settings with unregistered devices refused, as in production."""
    ingest = settings.ingest.model_copy(update={"require_registered_devices": True})
    return settings.model_copy(update={"ingest": ingest})
