"""Textual key events -> the bytes an xterm would send to the guest."""

from __future__ import annotations

from textual.keys import _character_to_key

CSI = "\x1b["
SS3 = "\x1bO"

# Keys whose unmodified form depends on DECCKM (application cursor mode).
_CURSOR_FINALS = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
# "CSI n ~" keys.
_TILDE = {
    "insert": 2,
    "delete": 3,
    "pageup": 5,
    "pagedown": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}
_SS3_FUNCTION = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_SIMPLE = {
    "enter": "\r",
    "tab": "\t",
    "backspace": "\x7f",
    "escape": "\x1b",
    "space": " ",
}
# Control characters with a key name of their own in Textual.
_CONTROL = {
    "ctrl+@": "\x00",
    "ctrl+space": "\x00",
    "ctrl+at": "\x00",
    "ctrl+left_square_bracket": "\x1b",
    "ctrl+backslash": "\x1c",
    "ctrl+right_square_bracket": "\x1d",
    "ctrl+circumflex_accent": "\x1e",
    "ctrl+underscore": "\x1f",
    "ctrl+h": "\x08",
    "ctrl+backspace": "\x08",
    "shift+tab": CSI + "Z",
}
_MODIFIER_BITS = {"shift": 1, "alt": 2, "meta": 2, "ctrl": 4}


def normalize_key(key: str) -> str:
    """``"ctrl+]"`` -> ``"ctrl+right_square_bracket"`` (Textual's name for the key)."""
    key = key.strip()
    if key == "+" or key.endswith("++"):
        modifiers, last = key[:-1].split("+"), "+"
    else:
        *modifiers, last = key.split("+")
    modifiers = sorted(m.lower() for m in modifiers if m)
    if len(last) == 1 and not last.isalnum():
        last = _character_to_key(last)
    elif len(last) > 1 or modifiers:
        last = last.lower()
    return "+".join([*modifiers, last])


def encode_key(key: str, character: str | None, *, application_cursor: bool) -> bytes | None:
    """Bytes for a key press, or None if the key has no terminal encoding."""
    if key in _CONTROL:
        return _CONTROL[key].encode()
    *modifiers, name = key.split("+")
    bits = sum(_MODIFIER_BITS.get(m, 0) for m in modifiers)
    param = f"1;{bits + 1}" if bits else ""

    if name in _CURSOR_FINALS:
        final = _CURSOR_FINALS[name]
        if param:
            return f"{CSI}{param}{final}".encode()
        return f"{SS3 if application_cursor else CSI}{final}".encode()
    if name in _TILDE:
        suffix = f";{bits + 1}" if bits else ""
        return f"{CSI}{_TILDE[name]}{suffix}~".encode()
    if name in _SS3_FUNCTION:
        if param:
            return f"{CSI}{param}{_SS3_FUNCTION[name]}".encode()
        return f"{SS3}{_SS3_FUNCTION[name]}".encode()

    alt = "alt" in modifiers or "meta" in modifiers
    prefix = "\x1b" if alt else ""
    if name in _SIMPLE and not (set(modifiers) - {"alt", "meta"}):
        return (prefix + _SIMPLE[name]).encode()
    if "ctrl" in modifiers and len(name) == 1 and name.isalpha() and name.isascii():
        # ctrl+a..ctrl+z -> 0x01..0x1a (shift does not change a control character)
        return (prefix + chr(ord(name.lower()) - ord("a") + 1)).encode()
    if "ctrl" in modifiers:
        return None  # no standard encoding (ctrl+1, ctrl+up is handled above, ...)
    if character and character.isprintable():
        return (prefix + character).encode("utf-8")
    if alt and len(name) == 1 and name.isprintable():
        return (prefix + name).encode("utf-8")
    return None
