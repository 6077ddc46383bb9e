"""Text from outside, made safe to show: sanitised (``tui.host.text``) and never parsed as markup.

Names, paths, flake refs, nix output, reasons built from them and whatever the admin typed may
hold ``[`` and ``[/``: a Textual widget given a ``str`` parses it as content markup, which
restyles the text or (``[/`` without an open tag) raises and ends the app. So text that holds
anything from outside goes to a widget as ``Content`` made here (``Static.update``, ``Label``,
dialogs, DataTable cells, titles), and to ``notify`` through :func:`notify_outside`
(``markup=False``). Strings built for rich ``Text`` (no markup parsing there) take
:func:`~tui.host.text.sanitise` directly.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.content import Content
from textual.markup import escape

from tui.host.text import sanitise

__all__ = ["notify_outside", "outside_markup", "outside_text", "sanitise"]


def outside_text(
    text: object, style: str = "", *, limit: int | None = None, newlines: bool = True
) -> Content:
    """TEXT as plain ``Content``: sanitised, never markup. NEWLINES: keep line breaks (for
    bodies and messages; a single-line field passes False and shows a break as ``␊``).

    A rich ``Text`` keeps its styles: the sanitiser puts one character for one, so its spans
    still cover the same characters."""
    if isinstance(text, Text):
        plain = sanitise(text.plain, newlines=newlines)
        if plain != text.plain:
            text = Text(plain, style=text.style, spans=text.spans, end=text.end)
        content = Content.from_rich_text(text)
        if limit is not None and len(content) > limit:
            content = content[: max(limit - 1, 0)] + "…"
        return content.stylize(style) if style else content
    plain = sanitise(text, limit, newlines=newlines)
    return Content.styled(plain, style) if style else Content(plain)


def outside_markup(text: object) -> str:
    """TEXT sanitised and escaped, for the Textual APIs that take only a markup string (the
    command palette's help): shown as it is, never read as tags."""
    return escape(sanitise(text))


NOTIFY_LIMIT = 2000  # characters of a message (nix can say a lot); the job log has it all


def notify_outside(target: Any, message: object, *, title: object = "", **kwargs: Any) -> None:
    """``TARGET.notify`` (an App or a widget) with MESSAGE and TITLE sanitised and no markup."""
    target.notify(
        sanitise(message, NOTIFY_LIMIT, newlines=True),
        title=sanitise(title, 200),
        markup=False,
        **kwargs,
    )
