"""Shared pytest options: `--bayeux-url` points the conformance suite at an external server."""

from __future__ import annotations


def pytest_addoption(parser):  # type: ignore[no-untyped-def]
    parser.addoption(
        "--bayeux-url",
        default=None,
        help="run spec_tests against this Bayeux URL instead of an in-process server",
    )
