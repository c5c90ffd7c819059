"""Writes of the messaging domain (being split into modules by concern; see sending.py)."""

from .sending import *  # noqa: F403
