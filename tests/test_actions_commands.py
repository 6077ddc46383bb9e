"""commands.run: records, cancel escalation (SIGINT, SIGTERM, SIGKILL), timeouts."""

from __future__ import annotations

import threading

import pytest

from tests.test_actions_support import pid_alive
from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandRecord, run
from tui.host.actions.errors import CommandFailed

# Prints "ready" once its traps are set, so the test cancels only then.
IGNORES_INT = "trap '' INT; echo ready >&2; while :; do sleep 0.05; done"
IGNORES_INT_TERM = "trap '' INT TERM; echo ready >&2; while :; do sleep 0.05; done"


def cancel_when_ready(token: CancelToken):  # type: ignore[no-untyped-def]
    def on_line(line: str) -> None:
        if line == "ready":
            threading.Thread(target=token.cancel).start()

    return on_line


def test_a_command_is_recorded_with_status_and_output() -> None:
    records: list[CommandRecord] = []
    result = run(["sh", "-c", "echo out; echo err >&2; exit 3"], log=records.append)
    assert result.stdout == "out\n" and result.stderr == "err"
    (record,) = records
    assert record.argv == ("sh", "-c", "echo out; echo err >&2; exit 3")
    assert record.returncode == 3 and record.outcome == "exit 3" and not record.ok
    assert record.duration >= 0 and record.pid
    assert record.shown().startswith("$ sh -c 'echo out; echo err >&2; exit 3'  -> exit 3 (")


def test_a_missing_program_is_recorded_and_raised() -> None:
    records: list[CommandRecord] = []
    with pytest.raises(CommandFailed, match="not installed"):
        run(["no-such-program-here"], log=records.append)
    assert records[0].returncode is None and records[0].outcome.startswith("cannot run")


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("echo ready >&2; while :; do sleep 0.05; done", "cancelled (SIGINT)"),
        (IGNORES_INT, "cancelled (SIGTERM)"),
        (IGNORES_INT_TERM, "cancelled (SIGKILL)"),
    ],
)
def test_cancel_escalates_until_the_process_is_gone(script: str, expected: str) -> None:
    token = CancelToken()
    result = run(
        ["sh", "-c", script], cancel=token, on_stderr_line=cancel_when_ready(token), grace=0.3
    )
    assert result.cancelled
    assert result.record.outcome == expected
    assert not pid_alive(result.record.pid)  # type: ignore[arg-type]


def test_timeout() -> None:
    result = run(["sh", "-c", "exec sleep 30"], timeout=0.2, grace=1)
    assert result.timed_out and not result.cancelled
    assert result.record.outcome == "timed out after 0.2 s (SIGINT)"


def test_a_failing_callback_does_not_block_the_command() -> None:
    def broken(_: str) -> None:
        raise ValueError("boom")

    with pytest.raises(RuntimeError, match="stderr callback failed"):
        run(
            ["sh", "-c", "for i in $(seq 1 20000); do echo line $i >&2; done"],
            on_stderr_line=broken,
        )
