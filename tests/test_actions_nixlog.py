"""The internal-json parser against logs recorded from this machine's Nix 2.8.

The fixtures in tests/fixtures/nix/ are real stderr of `nix build -L --log-format
internal-json --json` on the test flake of test_actions_support (see the README there).
"""

from __future__ import annotations

from pathlib import Path

from tui.host.actions.nixlog import NixLogParser, derivation_name, parse_log, strip_ansi

FIXTURES = Path(__file__).parent / "fixtures" / "nix"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_successful_build_counts_both_derivations_and_keeps_the_log_tail() -> None:
    parser = NixLogParser(tail_lines=10)
    lines = parser.feed_all(read("build-ok.log"))
    parser.finish(True)
    progress = parser.progress()
    assert (progress.builds_done, progress.builds_expected, progress.builds_failed) == (2, 2, 0)
    assert progress.current_builds == ()
    assert progress.log_build == "microvm-qemu-web"
    assert progress.log_tail == ("building the runner of web", "done")
    assert progress.errors == ()
    assert progress.summary() == "2/2 built"
    # What a job log shows: what `nix build -L` prints in plain format.
    assert lines[0].startswith("building '/nix/store/") and lines[0].endswith(
        "-guest-data-r4.drv'..."
    )
    assert "microvm-qemu-web> building the runner of web" in lines


def test_progress_while_building_names_the_running_derivation() -> None:
    parser = NixLogParser()
    seen = []
    for line in read("build-ok.log").splitlines():
        parser.feed(line)
        seen.append(parser.progress())
    running = [p for p in seen if p.current_builds]
    assert running[0].current_builds == ("guest-data-r4",)
    assert running[-1].current_builds == ("microvm-qemu-web",)
    # Nix says 2 are expected before the first one is done.
    assert any(p.builds_expected == 2 and p.builds_done == 0 for p in seen)
    assert any(p.builds_done == 1 and p.builds_running == 1 for p in seen)


def test_failed_build_reports_nix_error_and_the_builder_output() -> None:
    progress = parse_log(read("build-failed.log"), success=False)
    assert progress.builds_failed == 1
    assert progress.builds_done == 0
    assert len(progress.errors) == 1
    error = progress.errors[0]
    assert error.startswith("builder for '/nix/store/")
    assert error.endswith("-microvm-qemu-bad.drv' failed with exit code 1")
    assert "\x1b" not in error  # colours stripped
    assert progress.log_build == "microvm-qemu-bad"
    assert progress.log_tail == ("compiling bad", "oops: broken on purpose")
    assert progress.summary() == "0/1 built, 1 failed"


def test_cancelled_build_keeps_what_was_expected() -> None:
    progress = parse_log(read("build-cancelled.log"), success=False)
    assert progress.errors == ("interrupted by the user",)
    assert (progress.builds_done, progress.builds_expected) == (0, 1)
    assert progress.log_tail[0].startswith("started actions-test-")


def test_evaluation_error_has_no_build_but_the_message() -> None:
    progress = parse_log(read("eval-error.log"), success=False)
    assert progress.builds_expected == 0
    assert "does not provide attribute" in progress.errors[0]
    assert progress.errors[0].startswith("flake 'path:/tmp/rec/flake'")
    assert progress.summary() == "failed"


def test_substitution_counts_paths_and_bytes() -> None:
    parser = NixLogParser()
    byte_counts = []
    for line in read("substitute.log").splitlines():
        parser.feed(line)
        byte_counts.append(parser.progress().bytes_fetched)
    before_end = parser.progress()
    assert (before_end.paths_done, before_end.paths_expected) == (2, 2)
    # setExpected(copyPath) on the realise activity: the NAR size of both paths.
    assert before_end.bytes_expected == 1049928
    assert before_end.download_expected == 648
    assert byte_counts == sorted(byte_counts)  # never goes backwards
    assert len(set(byte_counts)) > 50  # many intermediate values, not just start/end
    parser.finish(True)
    done = parser.progress()
    assert done.bytes_fetched == done.bytes_expected == 1049928
    assert done.builds_expected == 0
    assert done.summary() == "2/2 copied (1.0 MiB of 1.0 MiB); 648 B of 648 B downloaded"


def test_plain_lines_and_garbage_do_not_break_the_parser() -> None:
    parser = NixLogParser()
    assert parser.feed("error: unrecognised flag '--print-out-paths'") == [
        "error: unrecognised flag '--print-out-paths'"
    ]
    assert parser.feed("@nix {not json") == ["@nix {not json"]
    assert parser.feed('@nix {"action":"result","id":1,"type":105,"fields":[1,2,0,0]}') == []
    assert parser.feed('@nix {"action":"stop","id":99}') == []
    assert parser.feed('@nix ["a"]') == ['@nix ["a"]']
    progress = parser.progress()
    assert progress.errors == ("unrecognised flag '--print-out-paths'",)


def test_warnings_and_phases() -> None:
    parser = NixLogParser(tail_lines=2)
    parser.feed(
        '@nix {"action":"start","id":7,"level":3,"type":105,'
        '"text":"building \'/nix/store/0000000000000000000000000000000a-x-1.0.drv\'",'
        '"fields":["/nix/store/0000000000000000000000000000000a-x-1.0.drv","",1,1]}'
    )
    parser.feed('@nix {"action":"result","id":7,"type":104,"fields":["buildPhase"]}')
    for n in range(3):
        parser.feed(f'@nix {{"action":"result","id":7,"type":101,"fields":["line {n}"]}}')
    parser.feed(
        '@nix {"action":"msg","level":1,"msg":"\\u001b[35;1mwarning:\\u001b[0m dirty",'
        '"raw_msg":"dirty"}'
    )
    progress = parser.progress()
    assert progress.current_builds == ("x-1.0",)
    assert progress.phase == "buildPhase"
    assert progress.log_tail == ("line 1", "line 2")
    assert progress.warnings == ("dirty",)


def test_helpers() -> None:
    assert derivation_name("/nix/store/4n97n9i1ad6y8raghayg6a0i83amn8qn-guest-data-r4.drv") == (
        "guest-data-r4"
    )
    assert strip_ansi("\x1b[31;1merror:\x1b[0m x") == "error: x"
