"""Shared pytest options: `--bayeux-url` points the conformance suite at an external server."""

from __future__ import annotations

import os

from hypothesis import settings

# In CI the property and fuzz tests replay the same examples every run (a red CI is about the
# change); locally they explore new ones each time.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser):  # type: ignore[no-untyped-def]
    parser.addoption(
        "--bayeux-url",
        default=None,
        help="run spec_tests against this Bayeux URL instead of an in-process server",
    )
