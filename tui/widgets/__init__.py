"""Textual widgets that render the host layer's dataclasses."""
