"""Reads of the messaging domain (being split into modules by concern; see history.py)."""

from .history import *  # noqa: F403
