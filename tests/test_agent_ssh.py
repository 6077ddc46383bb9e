"""The private directory for ssh's ControlPath sockets (tui/agent/ssh.py control_dir) and the
ssh command line: made 0700 without following links; a foreign, open or linked one refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.agent.ssh import SSH, ControlDirError, control_dir, ssh_argv


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    return run


def test_made_private_in_the_runtime_dir(runtime: Path) -> None:
    path = control_dir()
    assert path == runtime / "microvm-tui-ssh"
    st = os.lstat(path)
    assert st.st_uid == os.geteuid() and (st.st_mode & 0o777) == 0o700
    assert control_dir() == path  # again: the same, accepted


def test_a_link_planted_there_is_refused(runtime: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (runtime / "microvm-tui-ssh").symlink_to(elsewhere)
    with pytest.raises(ControlDirError, match="not a directory"):
        control_dir()


def test_one_open_to_others_is_refused(runtime: Path) -> None:
    (runtime / "microvm-tui-ssh").mkdir(mode=0o700)
    os.chmod(runtime / "microvm-tui-ssh", 0o755)
    with pytest.raises(ControlDirError, match="open to others"):
        control_dir()


def test_one_of_another_user_is_refused(runtime: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a directory of another user")
    (runtime / "microvm-tui-ssh").mkdir(mode=0o700)
    os.chown(runtime / "microvm-tui-ssh", 65534, 65534)
    with pytest.raises(ControlDirError, match="belongs to uid 65534"):
        control_dir()


def test_a_runtime_dir_not_ours_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(open_dir))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert control_dir() == tmp_path / f"microvm-tui-ssh-{os.geteuid()}"


def test_our_options_come_first_and_the_remote_command_last(tmp_path: Path) -> None:
    argv = ssh_argv(["-o", "BatchMode=no", "root@h"], ["microvm-tui agent"], control=tmp_path)
    assert argv[:2] == [SSH, "-T"]
    assert argv.index("BatchMode=yes") < argv.index("BatchMode=no")  # ssh takes the first
    assert f"ControlPath={tmp_path}/%C" in argv and "ControlMaster=auto" in argv
    assert argv[-2:] == ["root@h", "microvm-tui agent"]
    assert "StrictHostKeyChecking=no" not in " ".join(argv)
