"""SGR (select graphic rendition) as changes to a cell's attributes: 16, 256 and truecolour,
both the ``38;5;n`` and the ``38:2::r:g:b`` spellings; every number a guest sends is range-checked.
Colours come out as ``"default"``, a palette index ``"0"``..``"255"`` or ``"rrggbb"``."""

from __future__ import annotations

from typing import Any

from pyte.screens import Char


def sgr_changes(groups: list[list[int]], default: Char) -> dict[str, Any]:
    """The attribute changes of one SGR sequence (its parameters as colon-separated groups),
    ``default`` being the blank cell that ``0`` resets to; {} for none. (A bare ``CSI m`` or
    ``CSI 0 m``, the reset, is the caller's: it needs no changes, just ``default``.)"""
    replace: dict[str, Any] = {}
    i = 0
    while i < len(groups):
        group = groups[i]
        i += 1
        code = group[0]
        if code in (38, 48, 58):
            if len(group) > 1:  # colon form: everything is in this group
                spec = group[1:]
                if spec[:1] == [2] and len(spec) >= 5:
                    spec = [2, *spec[-3:]]  # drop the optional colour-space id
            else:
                spec = [g[0] for g in groups[i : i + 4]]
                wanted = 2 if spec[:1] == [5] else 4 if spec[:1] == [2] else 1
                spec = spec[:wanted]
                i += len(spec)
            colour = _extended_colour(spec)
            if colour is not None and code != 58:  # 58 = underline colour: unsupported
                replace["fg" if code == 38 else "bg"] = colour
        elif code == 0:
            replace.update(default._asdict())
            del replace["data"]
        elif code == 1:
            replace["bold"] = True
        elif code == 3:
            replace["italics"] = True
        elif code == 4:
            replace["underscore"] = len(group) < 2 or group[1] != 0  # 4:0 = no underline
        elif code in (5, 6):
            replace["blink"] = True
        elif code == 7:
            replace["reverse"] = True
        elif code == 9:
            replace["strikethrough"] = True
        elif code == 21:
            replace["underscore"] = True
        elif code == 22:
            replace["bold"] = False
        elif code == 23:
            replace["italics"] = False
        elif code == 24:
            replace["underscore"] = False
        elif code == 25:
            replace["blink"] = False
        elif code == 27:
            replace["reverse"] = False
        elif code == 29:
            replace["strikethrough"] = False
        elif 30 <= code <= 37:
            replace["fg"] = str(code - 30)
        elif code == 39:
            replace["fg"] = "default"
        elif 40 <= code <= 47:
            replace["bg"] = str(code - 40)
        elif code == 49:
            replace["bg"] = "default"
        elif 90 <= code <= 97:
            replace["fg"] = str(code - 90 + 8)
        elif 100 <= code <= 107:
            replace["bg"] = str(code - 100 + 8)
    return replace


def _extended_colour(spec: list[int]) -> str | None:
    if len(spec) == 2 and spec[0] == 5 and 0 <= spec[1] <= 255:
        return str(spec[1])
    if len(spec) == 4 and spec[0] == 2:
        r, g, b = (max(0, min(255, c)) for c in spec[1:])
        return f"{r:02x}{g:02x}{b:02x}"
    return None
