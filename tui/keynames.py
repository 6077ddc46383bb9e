"""What a key name in the config may be: Textual's key syntax, checked without importing Textual
(``list`` start-up time counts).

A key is ``[modifier+]...name``: modifiers from ``MODIFIERS``; the name is one printable
character (``q``, ``?``, ``]``), a named key (``escape``, ``f5``, ``pageup``) or the name Textual
gives a punctuation character (``question_mark``, ``right_square_bracket``).
"""

from __future__ import annotations

import string
import unicodedata

MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
_NAMED = {
    "escape",
    "enter",
    "tab",
    "space",
    "backspace",
    "insert",
    "delete",
    "home",
    "end",
    "pageup",
    "pagedown",
    "up",
    "down",
    "left",
    "right",
    *(f"f{i}" for i in range(1, 25)),
}
# Textual's names for punctuation (its ``_character_to_key``, with its replacements).
_REPLACEMENTS = {
    "solidus": "slash",
    "reverse_solidus": "backslash",
    "commercial_at": "at",
    "hyphen_minus": "minus",
    "plus_sign": "plus",
    "low_line": "underscore",
}
_PUNCTUATION = {
    _REPLACEMENTS.get(n, n)
    for n in (
        unicodedata.name(c).lower().replace("-", "_").replace(" ", "_") for c in string.punctuation
    )
}
NAMES = frozenset(_NAMED | _PUNCTUATION)
MAX_KEY = 48  # characters in one key name
MAX_KEYS = 8  # keys bound to one action


def _split(key: str) -> tuple[list[str], str]:
    if key == "+" or key.endswith("++"):
        return key[:-1].split("+")[:-1] if key != "+" else [], "+"
    *modifiers, last = key.split("+")
    return modifiers, last


def key_problem(key: str) -> str | None:
    """Why KEY is not a key name, or None when it is one."""
    if not key:
        return "an empty key name"
    if len(key) > MAX_KEY:
        return f"a key name longer than {MAX_KEY} characters"
    modifiers, last = _split(key)
    for modifier in modifiers:
        if modifier not in MODIFIERS:
            return f"{modifier!r} is not a modifier ({', '.join(sorted(MODIFIERS))})"
    if len(set(modifiers)) != len(modifiers):
        return "a modifier given twice"
    if len(last) == 1:
        if not last.isprintable() or last.isspace():
            return "not a printable character"
        return None
    if last not in NAMES:
        return "not a key name (a character, or a name such as escape, f5, pageup, space)"
    return None


def _char_name(c: str) -> str:
    if c.isalnum():
        return c
    name = unicodedata.name(c, c).lower().replace("-", "_").replace(" ", "_")
    return _REPLACEMENTS.get(name, name)


def normalize(key: str) -> str:
    """KEY (checked by ``key_problem``) as Textual names it in a key event: ``"?"`` ->
    ``"question_mark"``, ``"ctrl+]"`` -> ``"ctrl+right_square_bracket"``. Textual matches a
    keymap's keys against events without renaming a character after a modifier, so the config
    stores this form (and compares keys in it)."""
    modifiers, last = _split(key.strip())
    if len(last) == 1:
        last = _char_name(last)
    return "+".join([*modifiers, last])


def normalize_list(keys: str) -> str:
    """``normalize`` for each key of a comma-separated list."""
    return ",".join(normalize(k) for k in keys.split(","))


def keys_problem(keys: str) -> str | None:
    """Why KEYS (comma-separated, as in a Textual binding) is not a list of key names."""
    items = [k.strip() for k in keys.split(",")]
    if len(items) > MAX_KEYS:
        return f"more than {MAX_KEYS} keys"
    for item in items:
        problem = key_problem(item)
        if problem:
            return f"{item!r}: {problem}" if item and len(items) > 1 else problem
    return None


def detach_key_problem(key: str) -> str | None:
    """Why KEY cannot be the console's detach key. It is never sent to the guest, so it must be
    a key no one types as text: one with ctrl/alt/meta, or a function key."""
    if "," in key:
        return "one key, not a list"
    problem = key_problem(key.strip())
    if problem:
        return problem
    modifiers, last = _split(key.strip())
    if not {"ctrl", "alt", "meta"} & set(modifiers) and not (
        last.startswith("f") and last[1:].isdigit()
    ):
        return "the guest needs that key: use ctrl+, alt+ or a function key (e.g. ctrl+])"
    return None
