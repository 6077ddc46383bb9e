"""Process-wide signal set-up the host layer relies on."""

from __future__ import annotations

import signal
import threading


def let_sigint_reach_children() -> None:
    """Make our SIGINT-based cancel work even when we were started with SIGINT ignored.

    A non-interactive shell starts background jobs (and `nohup` starts anything) with SIGINT
    ignored, and an ignored signal stays ignored across exec: nix would shrug off the SIGINT
    that cancels a build. A *handled* signal is reset to the default on exec, so installing
    Python's own handler is enough. Only the main thread may do this.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
