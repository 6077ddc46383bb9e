"""Runner parsers: every hypervisor's fixture, the shell reader, share/microvm, and garbage.

The fixtures under tests/fixtures/runners/ follow microvm.nix lib/runner.nix and
lib/runners/*.nix @ 71beea0; their READMEs list the VM each one describes.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest

from tui.host.model import HYPERVISORS, NicSpec, RunnerSpec, SerialSpec, ShareSpec, VolumeSpec
from tui.host.runners import PARSERS, apply_firecracker_config, parse_runner
from tui.host.runners.runscript import (
    extract_assignments,
    extract_command,
    extract_exec,
    extract_fd_links,
)
from tui.host.runners.sharefiles import hypervisor_from_package_name, read_share_dir
from tui.host.runners.shellwords import MAX_SCRIPT_CHARS, RunnerParseError

FIXTURES = Path(__file__).parent / "fixtures" / "runners"
FC_CONFIG = next((FIXTURES / "firecracker").glob("*-firecracker-fcvm.json"))


def script(hypervisor: str, variant: str | None = None) -> str:
    if variant:
        return (FIXTURES / hypervisor / "variants" / f"microvm-run.{variant}").read_text()
    return (FIXTURES / hypervisor / "bin" / "microvm-run").read_text()


def fc_reader(path: str) -> str:
    """Reads the firecracker config from the fixtures, as if from the Nix store."""
    return (FIXTURES / "firecracker" / Path(path).name).read_text()


def parse(hypervisor: str, variant: str | None = None) -> RunnerSpec:
    return parse_runner(script(hypervisor, variant), hypervisor, config_reader=fc_reader)


def vol(image: str, read_only: bool) -> VolumeSpec:
    return VolumeSpec(image=image, read_only=read_only)


def tap(ident: str, mac: str, type: str = "tap") -> NicSpec:
    return NicSpec(id=ident, type=type, mac=mac)


# --- every hypervisor's fixture ------------------------------------------------------------


def test_every_hypervisor_has_a_parser_and_a_fixture() -> None:
    assert set(PARSERS) == set(HYPERVISORS)
    for hypervisor in HYPERVISORS:
        assert (FIXTURES / hypervisor / "bin" / "microvm-run").is_file()
        assert "@ 71beea0" in script(hypervisor).splitlines()[1]


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
def test_fixtures_parse_without_problems(hypervisor: str) -> None:
    spec = parse(hypervisor)
    assert spec.problems == []
    assert spec.hypervisor == hypervisor


def test_qemu() -> None:
    spec = parse("qemu")
    assert spec.binary is not None and spec.binary.endswith("/bin/qemu-system-x86_64")
    assert (spec.vcpu, spec.mem_mib) == (2, 1024)
    assert spec.socket == "/var/lib/microvms/webvm/webvm.sock"
    assert spec.volumes == [vol("var.img", False), vol("/srv/microvms/webvm/data.img", True)]
    assert spec.shares == [
        ShareSpec(tag="ro-store", proto="9p", source="/nix/store", read_only=True),
        ShareSpec(tag="data", proto="virtiofs", socket="webvm-virtiofs-data.sock"),
    ]
    assert spec.nics == [
        tap("vm-webvm", "02:00:00:00:00:01"),
        tap("vm-webvm-mvt", "02:00:00:00:00:02", "macvtap"),
    ]
    assert spec.balloon is True
    assert spec.vsock_cid == 5
    assert spec.serial == SerialSpec(kind="stdio")
    assert spec.config_file is None


def test_qemu_without_pretty_procnames() -> None:
    text = script("qemu", "no-procname")
    assert extract_exec(text).process_name is None
    assert extract_exec(script("qemu")).process_name == "microvm@webvm"
    spec = parse_runner(text, "qemu")
    assert spec.problems == []
    assert (spec.vcpu, spec.mem_mib) == (1, 512)
    assert spec.socket is None  # microvm.socket = null
    assert spec.volumes == [vol("var.img", False)]  # the store disk is not a volume
    assert spec.shares == []
    assert spec.nics == [tap("usernet", "02:00:00:00:00:03", "user")]
    assert spec.balloon is False
    assert spec.vsock_cid is None
    assert spec.serial == SerialSpec(kind="null")  # serialConsole off + -nodefaults


def test_qemu_relative_socket_and_hotplug_memory() -> None:
    spec = parse_runner(script("qemu", "relative-socket"), "qemu")
    assert spec.problems == []
    assert spec.socket == "webvm.sock"
    assert spec.mem_mib == 1024  # base memory; maxmem is the hotplug ceiling


def test_qemu_serial_on_unix_socket() -> None:
    spec = parse_runner(script("qemu", "serial-unix"), "qemu")
    assert spec.problems == []
    assert spec.serial == SerialSpec(
        kind="unix", path="/run/microvm/webvm-console.sock", server=True
    )


def test_cloud_hypervisor() -> None:
    spec = parse("cloud-hypervisor")
    assert spec.binary is not None and spec.binary.endswith("/bin/cloud-hypervisor")
    assert (spec.vcpu, spec.mem_mib) == (4, 2048)
    assert spec.socket == "chvm.sock"
    assert spec.volumes == [vol("var.img", False), vol("/srv/microvms/chvm/data.img", True)]
    assert spec.shares == [
        ShareSpec(tag="home", proto="virtiofs", socket="chvm-virtiofs-home.sock"),
    ]
    # the macvtap NIC is only "fd=[3,4,5,6]" on the command line; the script's
    # "exec 3<>/dev/tap$(< /sys/class/net/vm-chvm-mvt/ifindex)" names it
    assert spec.nics == [
        tap("vm-chvm", "02:00:00:00:01:01"),
        tap("vm-chvm-mvt", "02:00:00:00:01:02", "macvtap"),
    ]
    assert spec.balloon is True
    assert spec.vsock_cid == 6
    assert spec.serial == SerialSpec(kind="tty")


def test_firecracker() -> None:
    spec = parse("firecracker")
    assert spec.binary is not None and spec.binary.endswith("/bin/firecracker")
    assert spec.config_file is not None and spec.config_file.endswith("-firecracker-fcvm.json")
    assert spec.socket == "fcvm.sock"
    assert (spec.vcpu, spec.mem_mib) == (2, 512)
    assert spec.volumes == [vol("var.img", False), vol("/srv/microvms/fcvm/data.img", True)]
    assert spec.shares == []
    assert spec.nics == [tap("vm-fcvm", "02:00:00:00:02:01")]
    assert spec.balloon is False
    assert spec.vsock_cid == 7
    assert spec.serial == SerialSpec(kind="stdio")


def test_firecracker_without_config_reader_leaves_json_fields_unknown() -> None:
    spec = parse_runner(script("firecracker"), "firecracker")
    assert spec.problems == []
    assert spec.config_file is not None
    assert (spec.vcpu, spec.mem_mib, spec.vsock_cid) == (None, None, None)


def test_crosvm() -> None:
    spec = parse("crosvm")
    assert spec.binary is not None and spec.binary.endswith("/bin/crosvm")
    assert (spec.vcpu, spec.mem_mib) == (2, 768)
    assert spec.socket == "cvm.sock"
    assert spec.volumes == [vol("var.img", False), vol("/srv/microvms/cvm/data.img", True)]
    assert spec.shares == [
        ShareSpec(tag="shared", proto="9p", source="/srv/cvm-shared", read_only=False),
        # tag taken from the default socket name HOST-virtiofs-TAG.sock
        ShareSpec(tag="ro-store", proto="virtiofs", socket="cvm-virtiofs-ro-store.sock"),
    ]
    assert spec.nics == [
        tap("vm-cvm", "02:00:00:00:03:01"),
        tap("vm-cvm-mvt", "02:00:00:00:03:02", "macvtap"),
    ]
    assert spec.balloon is True
    assert spec.vsock_cid == 8
    assert spec.serial == SerialSpec(kind="stdio")


def test_kvmtool() -> None:
    spec = parse("kvmtool")
    assert spec.binary is not None and spec.binary.endswith("/bin/lkvm")
    assert (spec.vcpu, spec.mem_mib) == (2, 512)
    assert spec.socket is None  # lkvm has no socket on its command line
    assert spec.volumes == [vol("var.img", False), vol("/srv/microvms/kvm1/data.img", True)]
    assert spec.shares == [
        ShareSpec(tag="shared", proto="9p", source="/srv/kvm1-shared", read_only=False)
    ]
    assert spec.nics == [
        tap("vm-kvm1", "02:00:00:00:04:01"),
        tap("vm-kvm1-mvt", "02:00:00:00:04:02", "macvtap"),
    ]
    assert spec.balloon is True
    assert spec.vsock_cid == 9
    assert spec.serial == SerialSpec(kind="stdio")


def test_stratovirt() -> None:
    spec = parse("stratovirt")
    # run under expect's unbuffer: the binary is the one after it
    assert spec.binary is not None and spec.binary.endswith("/bin/stratovirt")
    assert (spec.vcpu, spec.mem_mib) == (2, 512)
    assert spec.socket == "svm.sock"
    assert spec.volumes == [vol("var.img", False), vol("/srv/microvms/svm/data.img", True)]
    assert spec.shares == [ShareSpec(tag="home", proto="virtiofs", socket="svm-virtiofs-home.sock")]
    assert spec.nics == [
        tap("vm-svm", "02:00:00:00:05:01"),
        tap("vm-svm-mvt", "02:00:00:00:05:02", "macvtap"),
    ]
    assert spec.balloon is False
    assert spec.vsock_cid is None
    assert spec.serial == SerialSpec(kind="stdio")


def test_alioth() -> None:
    spec = parse("alioth")
    assert spec.binary is not None and spec.binary.endswith("/bin/alioth")
    assert (spec.vcpu, spec.mem_mib) == (2, 512)
    assert spec.socket is None
    assert spec.volumes == [vol("var.img", False), vol("/srv/microvms/avm/data.img", True)]
    assert spec.shares == [ShareSpec(tag="home", proto="virtiofs", socket="avm-virtiofs-home.sock")]
    assert spec.nics == [tap("vm-avm", "02:00:00:00:06:01")]
    assert spec.balloon is False
    assert spec.vsock_cid == 10
    assert spec.serial == SerialSpec(kind="stdio")


def test_vfkit() -> None:
    spec = parse("vfkit")
    # unwrapped from bash -c '...exec vfkit ... --restful-uri "unix:///$SOCKET_ABS"'
    assert spec.binary is not None and spec.binary.endswith("/bin/vfkit")
    assert (spec.vcpu, spec.mem_mib) == (2, 1024)
    assert spec.socket == "macvm.sock"
    assert spec.volumes == [
        vol("var.img", False),
        vol("/Users/me/microvms/macvm/data.img", False),  # vfkit ignores readOnly
    ]
    assert spec.shares == [ShareSpec(tag="home", proto="virtiofs", source="/Users/me/macvm-home")]
    assert spec.nics == [NicSpec(id="net0", type="user", mac="02:00:00:00:07:01")]
    assert spec.balloon is False
    assert spec.vsock_cid is None
    assert spec.serial == SerialSpec(kind="stdio")


def test_vfkit_absolute_socket_and_plain_uri() -> None:
    inner = (
        "SOCKET_ABS=/run/macvm.sock\n"
        '[[ "$SOCKET_ABS" != /* ]] && SOCKET_ABS="$PWD/$SOCKET_ABS"\n'
        'exec /bin/vfkit --cpus 1 --memory 256 --restful-uri "unix:///$SOCKET_ABS"\n'
    )
    assert PARSERS["vfkit"](["bash", "-c", inner]).socket == "/run/macvm.sock"
    plain = PARSERS["vfkit"](["/bin/vfkit", "--restful-uri", "unix:///tmp/v.sock"])
    assert plain.socket == "/tmp/v.sock"
    assert plain.problems == []
    tcp = PARSERS["vfkit"](["/bin/vfkit", "--restful-uri=tcp://localhost:8081"])
    assert tcp.socket is None
    assert tcp.problems


# --- details of single options ------------------------------------------------------------


def test_qemu_serial_and_monitor_variants() -> None:
    q = PARSERS["qemu"]
    chardev = q(
        [
            "qemu-system-x86_64",
            "-chardev",
            "socket,id=ser0,path=/run/c.sock,server=on,wait=off",
            "-serial",
            "chardev:ser0",
            "-chardev",
            "socket,id=mon0,path=ctl.sock,server=on,wait=off",
            "-mon",
            "chardev=mon0,mode=control",
        ]
    )
    assert chardev.serial == SerialSpec(kind="unix", path="/run/c.sock", server=True)
    assert chardev.socket == "ctl.sock"
    assert q(["qemu-system-x86_64", "-serial", "pty"]).serial == SerialSpec(kind="pty")
    assert q(["qemu-system-x86_64", "-nographic"]).serial == SerialSpec(kind="stdio")
    assert q(["qemu-system-aarch64", "-smp", "cpus=4,sockets=1"]).vcpu == 4
    assert q(["qemu-system-aarch64", "-smp", "sockets=2,cores=2,threads=2"]).vcpu == 8
    assert q(["qemu-system-x86_64", "-m", "2G"]).mem_mib == 2048
    assert q(["qemu-system-x86_64", "-m", "size=768"]).mem_mib == 768


def test_qemu_escaped_commas_in_paths() -> None:
    spec = PARSERS["qemu"](["qemu-system-x86_64", "-drive", "id=vda,file=a,,b.img,read-only=on"])
    assert spec.volumes == [vol("a,b.img", True)]


def test_cloud_hypervisor_argh_syntax_and_serial_modes() -> None:
    ch = PARSERS["cloud-hypervisor"]
    spec = ch(
        [
            "/bin/cloud-hypervisor",
            "--disk",
            "path=a.img,readonly=off",
            "--disk",
            "path=b.img,readonly=on",
            "--serial",
            "socket=/run/ch-serial.sock",
            "--net",
            "fd=[3],mac=02:00:00:00:00:09",
        ]
    )
    assert spec.volumes == [vol("a.img", False), vol("b.img", True)]
    assert spec.serial == SerialSpec(kind="unix", path="/run/ch-serial.sock", server=True)
    assert spec.nics == [tap("fd:3", "02:00:00:00:00:09", "macvtap")]  # no script to name it
    assert ch(["/bin/cloud-hypervisor", "--serial", "pty"]).serial == SerialSpec(kind="pty")
    assert ch(["/bin/cloud-hypervisor", "--serial=off"]).serial == SerialSpec(kind="null")
    assert ch(["/bin/cloud-hypervisor"]).serial == SerialSpec(kind="null")


def test_unknown_arguments_become_problems_but_the_rest_is_read() -> None:
    spec = PARSERS["qemu"](["qemu-system-x86_64", "-frobnicate", "x", "-smp", "3", "stray"])
    assert spec.vcpu == 3
    assert "did not understand the qemu argument '-frobnicate x'" in spec.problems
    assert "did not understand the qemu argument 'stray'" in spec.problems


def test_option_without_value() -> None:
    spec = PARSERS["qemu"](["qemu-system-x86_64", "-m"])
    assert spec.problems == ["the qemu option '-m' has no value"]
    assert spec.mem_mib is None


def test_wrong_binary_is_a_problem() -> None:
    spec = PARSERS["firecracker"](["/bin/qemu-system-x86_64", "-m", "512"])
    assert any("does not look like firecracker" in p for p in spec.problems)


# --- garbage never raises ------------------------------------------------------------------

MEMORY_GARBAGE = {
    "qemu": (["qemu-system-x86_64", "-m", "abc"], "could not read the memory size from '-m abc'"),
    "cloud-hypervisor": (
        ["cloud-hypervisor", "--memory", "size=lots"],
        "could not read the memory size from '--memory size=lots'",
    ),
    "crosvm": (["crosvm", "run", "-m", "abc", "k"], "could not read the memory size from '-m abc'"),
    "kvmtool": (["lkvm", "run", "-m", "abc"], "could not read the memory size from '-m abc'"),
    "stratovirt": (["stratovirt", "-m", "abc"], "could not read the memory size from '-m abc'"),
    "alioth": (
        ["alioth", "run", "--memory", "size=abc"],
        "could not read the memory size from '--memory size=abc'",
    ),
    "vfkit": (["vfkit", "--memory", "abc"], "could not read the memory size from '--memory abc'"),
}


@pytest.mark.parametrize("hypervisor", sorted(MEMORY_GARBAGE))
def test_memory_garbage_is_a_problem(hypervisor: str) -> None:
    argv, problem = MEMORY_GARBAGE[hypervisor]
    spec = PARSERS[hypervisor](argv)
    assert spec.mem_mib is None
    assert problem in spec.problems


def test_memory_garbage_through_a_script() -> None:
    spec = parse_runner("exec qemu-system-x86_64 -m abc -smp 2\n", "qemu")
    assert spec.mem_mib is None
    assert spec.vcpu == 2
    assert spec.problems == ["could not read the memory size from '-m abc'"]


GARBAGE_SCRIPTS = {
    "empty": "",
    "blank": "  \n\t\n",
    "no exec": "#!/bin/sh\nset -e\necho hello\n",
    "only fd execs": "exec 3<>/dev/tap$(< /sys/class/net/x/ifindex)\n",
    "unbalanced single quote": "exec qemu-system-x86_64 -name 'oops\n",
    "unbalanced double quote": 'exec qemu-system-x86_64 -append "oops\n',
    "unclosed substitution": "x=$(echo\nexec qemu-system-x86_64\n",
    "unclosed heredoc": "cat <<EOF\nexec qemu-system-x86_64 -m 1\n",
    "exec -a without name": "exec -a\n",
    "trailing backslash": "exec qemu \\",
    "nul bytes": "exec qemu\x00-system\n",
    "binary junk": random.Random(1).randbytes(4096).decode("latin-1"),
    "binary junk without NUL": bytes(b or 1 for b in random.Random(2).randbytes(4096)).decode(
        "latin-1"
    ),
    "utf-8 replacement junk": random.Random(3).randbytes(4096).decode("utf-8", "replace"),
    "huge": "# padding\n" * (MAX_SCRIPT_CHARS // 10 + 1) + "exec qemu-system-x86_64\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_SCRIPTS))
@pytest.mark.parametrize("hypervisor", HYPERVISORS)
def test_garbage_scripts_give_problems(name: str, hypervisor: str) -> None:
    spec = parse_runner(GARBAGE_SCRIPTS[name], hypervisor, config_reader=fc_reader)
    assert isinstance(spec, RunnerSpec)
    assert spec.problems, name
    assert all(isinstance(p, str) and p for p in spec.problems)


@pytest.mark.parametrize("name", sorted(GARBAGE_SCRIPTS))
def test_extract_command_raises_only_runner_parse_error(name: str) -> None:
    with pytest.raises(RunnerParseError):
        extract_command(GARBAGE_SCRIPTS[name])


def test_unknown_hypervisor() -> None:
    spec = parse_runner(script("qemu"), "bhyve")
    assert spec.problems == ["unknown hypervisor 'bhyve': fields unknown"]
    assert spec.vcpu is None


def test_random_argv_never_raises() -> None:
    """Shuffle real options, values and junk: every parser returns a spec."""
    words = [
        "-m", "-smp", "-drive", "-device", "-netdev", "-chardev", "-serial", "-qmp", "-fsdev",
        "--memory", "--cpus", "--disk", "--net", "--fs", "--vsock", "--serial", "--balloon",
        "--api-socket", "--config-file", "--block", "--shared-dir", "--vhost-user", "-n", "-d",
        "--9p", "--blk", "--num-cpu", "--device", "--restful-uri", "run", "-c", "-s", "-r",
        "", "=", ",", ",,", "[", "]", "x=", "=y", "size=", "cid=", "boot=", "tap=", "fd=[",
        "virtio-9p-pci,fsdev=nope", "vhost-user-fs-pci,chardev=nope,tag=t", "chardev:nope",
        "socket,id=a", "tap,fd=", "unix:", "type=fs", "virtio-net,nat", "virtio-fs,mountTag=",
        "-1", "99999999999999999999", "1.5G", "\u00e9\u2603", "--x=y", "-", "--",
    ]  # fmt: skip
    rng = random.Random(7)
    for _ in range(300):
        argv = [rng.choice(["qemu", "crosvm", "lkvm", "alioth", "bash"])]
        argv += [rng.choice(words) for _ in range(rng.randrange(12))]
        for parser in PARSERS.values():
            assert isinstance(parser(argv), RunnerSpec)
        assert isinstance(PARSERS["crosvm"](["crosvm", "run", *argv]), RunnerSpec)


def test_random_shell_text_only_raises_runner_parse_error() -> None:
    pieces = ["exec ", "-a ", "x", " ", "\n", "'", '"', "\\", "$(", ")", "${", "}", "`", "#",
              ";", "&", "|", "<<", "EOF", "<", ">", "3<>", "(", "=", "-m 1", "\\\n", "$'",
              "\t"]  # fmt: skip
    rng = random.Random(11)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30)))
        try:
            assert all(isinstance(w, str) for w in extract_command(text))
        except RunnerParseError as e:
            assert str(e)
        assert isinstance(parse_runner(text, "qemu"), RunnerSpec)


def test_a_large_legal_script_is_fast() -> None:
    text = "# filler line\necho 'a; b' \"$(date)\" &\n" * 10_000 + script("qemu")
    start = time.perf_counter()
    spec = parse_runner(text, "qemu")
    assert time.perf_counter() - start < 2
    assert spec.problems == []
    assert spec.vcpu == 2


# --- firecracker's JSON config --------------------------------------------------------------


def test_firecracker_config_read_error_is_a_problem() -> None:
    def broken(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    spec = parse_runner(script("firecracker"), "firecracker", config_reader=broken)
    assert spec.vcpu is None
    assert len(spec.problems) == 1
    assert "could not read the firecracker config" in spec.problems[0]
    assert "Permission denied" in spec.problems[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"machine-config": {"vcpu_count": "two", "mem_size_mib": 512}}', "vcpu_count"),
        ('{"machine-config": {"vcpu_count": true, "mem_size_mib": 512}}', "vcpu_count"),
        ('{"drives": "nope", "machine-config": {"vcpu_count": 1, "mem_size_mib": 1}}', "drives"),
        ('{"vsock": {"guest_cid": "x"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 1}}',
         "guest_cid"),
        ("{}", "no machine-config"),
        ("[" * 100_000, "not valid JSON"),
    ],
)  # fmt: skip
def test_firecracker_config_garbage(text: str, expected: str) -> None:
    spec = parse_runner(script("firecracker"), "firecracker", config_reader=lambda _p: text)
    assert any(expected in p for p in spec.problems), spec.problems


def test_firecracker_config_with_balloon() -> None:
    config = json.loads(FC_CONFIG.read_text())
    config["balloon"] = {"amount_mib": 0, "deflate_on_oom": True}
    spec = apply_firecracker_config(RunnerSpec(hypervisor="firecracker"), json.dumps(config))
    assert spec.balloon is True
    assert spec.problems == []


# --- the shell reader ----------------------------------------------------------------------


def test_line_continuations_and_exec_options() -> None:
    text = (
        "set -e\n"
        "exec -cl -a 'microvm@x y' /bin/qemu \\\n  -m 1G \\\n  -smp 2 2>&1 ${runtime_args:-}\n"
    )
    line = extract_exec(text)
    assert line.argv == ["/bin/qemu", "-m", "1G", "-smp", "2"]
    assert line.process_name == "microvm@x y"


def test_exec_in_quotes_comments_and_heredocs_is_not_the_command() -> None:
    text = (
        "# exec /bin/comment\n"
        "echo 'exec /bin/quoted'\n"
        "cat <<'EOF'\nexec /bin/heredoc\nEOF\n"
        "if true; then exec /bin/real -m 1; fi\n"
        "echo done  # exec /bin/trailing-comment\n"
    )
    assert extract_command(text) == ["/bin/real", "-m", "1"]


def test_fd_links_and_assignments() -> None:
    assert extract_fd_links(script("cloud-hypervisor")) == {
        3: "vm-chvm-mvt",
        4: "vm-chvm-mvt",
        5: "vm-chvm-mvt",
        6: "vm-chvm-mvt",
    }
    assert extract_fd_links("garbage 'unclosed") == {}
    assert extract_assignments('A=1\nB="two words"\nA=3\nC=x echo\n') == {
        "A": "1",
        "B": "two words",
    }


def test_substitutions_stay_in_one_word() -> None:
    assert extract_command('exec /bin/x "$(echo a b)" ${FOO:-c d} $((1 + 2))\n') == [
        "/bin/x",
        "$(echo a b)",
        "${FOO:-c d}",
        "$((1 + 2))",
    ]


# --- share/microvm ---------------------------------------------------------------------------


def test_share_dir_qemu() -> None:
    share = read_share_dir(FIXTURES / "qemu")
    assert share.problems == []
    assert share.hypervisor == "qemu"
    assert share.tap_interfaces == ["vm-webvm"]
    assert share.tap_flags == ["vnet_hdr", "multi_queue"]
    assert share.macvtap_interfaces == [
        NicSpec(
            id="vm-webvm-mvt", type="macvtap", mac="02:00:00:00:00:02", link="enp1s0", mode="bridge"
        )
    ]
    assert share.virtiofs == [
        ShareSpec(
            tag="data",
            proto="virtiofs",
            socket="webvm-virtiofs-data.sock",
            source="/srv/webvm-data",
        )
    ]
    assert share.pci_devices == ["0000:01:00.0"]
    assert share.usb_devices == ["vendorid=0x1050,productid=0x0407"]
    assert share.vsock_cid == 5
    assert share.system is not None and share.system.endswith(
        "-nixos-system-webvm-25.11.20250801.a1b2c3d"
    )


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
def test_share_dirs_agree_with_the_runner(hypervisor: str) -> None:
    share = read_share_dir(FIXTURES / hypervisor)
    spec = parse(hypervisor)
    assert share.problems == []
    assert share.hypervisor == hypervisor
    assert share.vsock_cid == spec.vsock_cid
    taps = [n.id for n in spec.nics if n.type == "tap"]
    assert share.tap_interfaces == taps
    assert [m.id for m in share.macvtap_interfaces] == [
        n.id for n in spec.nics if n.type == "macvtap"
    ]
    assert {s.tag for s in share.virtiofs} == {s.tag for s in spec.shares if s.proto == "virtiofs"}


def _share_root(tmp_path: Path) -> Path:
    root = tmp_path / "runner" / "share" / "microvm"
    root.mkdir(parents=True)
    return root


def test_share_dir_garbage(tmp_path: Path) -> None:
    root = _share_root(tmp_path)
    (root / "hypervisor").write_text("qemu\nextra\n")
    (root / "tap-interfaces").write_text(
        "vm-ok\nname with spaces\nwaaaaaaaaaaaaaaaaaaaay-too-long\n"
    )
    (root / "tap-flags").write_text("vnet_hdr bogus\n")
    (root / "macvtap-interfaces").write_text(
        "vm-a 02:00:00:00:00:01 eth0 bridge\nvm-b nomac eth0 bridge\nvm-c 02:00:00:00:00:01\n"
        "vm-d 02:00:00:00:00:02 eth0 sideways\n"
    )
    (root / "vsock-cid").write_text("five\n")
    (root / "pci-devices").write_bytes(b"\xff\xfe garbage")
    (root / "virtiofs" / "only-socket").mkdir(parents=True)
    (root / "virtiofs" / "only-socket" / "socket").write_text("x.sock\n")
    (root / "virtiofs" / "stray-file").write_text("not a dir\n")
    share = read_share_dir(tmp_path / "runner")
    assert share.hypervisor == "qemu"
    assert share.tap_interfaces == ["vm-ok"]
    assert share.tap_flags == ["vnet_hdr"]
    assert [m.id for m in share.macvtap_interfaces] == ["vm-a"]
    assert share.vsock_cid is None
    assert share.pci_devices == []
    assert share.virtiofs == [ShareSpec(tag="only-socket", proto="virtiofs", socket="x.sock")]
    expected = [
        "share/microvm/hypervisor has 2 lines",
        "share/microvm/tap-interfaces line 2 is not an interface name",
        "share/microvm/tap-interfaces line 3 is not an interface name",
        "share/microvm/tap-flags line 1 has an unknown flag 'bogus'",
        "share/microvm/macvtap-interfaces line 2 has an invalid MAC address",
        "share/microvm/macvtap-interfaces line 3 has 2 fields",
        "share/microvm/macvtap-interfaces line 4 has an unknown macvtap mode",
        "share/microvm/vsock-cid is not a number",
        "share/microvm/pci-devices is not UTF-8 text",
        "share/microvm/virtiofs/only-socket/source is missing",
        "share/microvm/virtiofs/stray-file is not a directory",
    ]
    for sentence in expected:
        assert any(p.startswith(sentence) for p in share.problems), (sentence, share.problems)
    assert len(share.problems) == len(expected)


def test_share_dir_links_and_special_files(tmp_path: Path) -> None:
    root = _share_root(tmp_path)
    os.symlink("vsock-cid", root / "vsock-cid")  # loops onto itself
    os.symlink("/nonexistent/target", root / "tap-interfaces")
    os.mkfifo(root / "macvtap-interfaces")  # must not block the reader
    (root / "hypervisor").mkdir()
    (root / "usb-devices").write_text("x" * 100_000)
    share = read_share_dir(tmp_path / "runner")
    assert sorted(share.problems) == sorted(
        [
            "share/microvm/vsock-cid is a symlink loop",
            "share/microvm/tap-interfaces is a dangling symlink (to /nonexistent/target)",
            "share/microvm/macvtap-interfaces is not a regular file",
            "share/microvm/hypervisor is a directory, expected a file",
            "share/microvm/usb-devices is larger than 65536 bytes, so it was not read",
        ]
    )


@pytest.mark.parametrize("cid", ["0", "2", "4294967295", "-3", ""])
def test_share_dir_unusable_cids(tmp_path: Path, cid: str) -> None:
    root = _share_root(tmp_path)
    (root / "vsock-cid").write_text(cid + "\n")
    share = read_share_dir(tmp_path / "runner")
    assert share.vsock_cid is None
    assert len(share.problems) == 1 and "vsock-cid" in share.problems[0]


def test_share_dir_missing_and_old_runners(tmp_path: Path) -> None:
    missing = read_share_dir(tmp_path / "nothing-here")
    assert missing.problems == [
        f"the runner {tmp_path / 'nothing-here'} has no share/microvm directory"
    ]
    old = tmp_path / "0123456789abcdfghijklmnpqrsvwxyz-microvm-cloud-hypervisor-my-vm"
    (old / "share" / "microvm").mkdir(parents=True)
    share = read_share_dir(old)
    assert share.problems == []
    assert share.hypervisor == "cloud-hypervisor"  # from the package name
    assert hypervisor_from_package_name(old) == "cloud-hypervisor"
    assert hypervisor_from_package_name("/nix/store/x-microvm-qemu-vm") is None  # bad hash
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    assert read_share_dir(loop).problems == [f"the runner {loop} is a dangling or looping symlink"]


def test_share_dir_unknown_hypervisor_name(tmp_path: Path) -> None:
    root = _share_root(tmp_path)
    (root / "hypervisor").write_text("bhyve\n")
    share = read_share_dir(tmp_path / "runner")
    assert share.hypervisor == "bhyve"
    assert share.problems == ["share/microvm/hypervisor names an unknown hypervisor 'bhyve'"]
