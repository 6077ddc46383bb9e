import pytest

from tui.host.names import is_valid_name, name_problem


@pytest.mark.parametrize("name", ["web", "db-1", "my_vm.example", "a", "x" * 64, "vm+blue"])
def test_valid(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "-rf", ".hidden", "a/b", "a b", "vm@x", "x" * 65, "bad\x1b[31m", "ü", "a\nb", "$(id)"],
)
def test_invalid_with_reason(name: str) -> None:
    problem = name_problem(name)
    assert problem
    assert "\x1b" not in problem and "\n" not in problem
