"""The CLI and the magics accept the same flags for every operation they share, because both
parsers are built from launch_jupyter.options; this checks the parsers themselves."""

from __future__ import annotations

import argparse

import pytest

from launch_jupyter import cli, magics
from launch_jupyter.options import BOTH, OPERATIONS, flags

#: Options one door adds to every command of its own: the CLI's store URL, or server and token.
DOOR_GLOBALS = {"--store", "--server", "--token"}


def _leaf(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    for word in words:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return parser


SHARED = [op for op in OPERATIONS if set(BOTH) <= set(op.doors)]


def test_most_operations_are_shared() -> None:
    names = {op.name for op in SHARED}
    assert {"submit", "sweep", "items", "run", "logs", "queue pause", "queue resume",
            "queue delete", "delete", "agent"} <= names


@pytest.mark.parametrize("op", SHARED, ids=lambda op: op.name)
def test_cli_and_magics_take_the_same_flags(op: object) -> None:
    cli_parser = _leaf(cli.build_parser(), op.words_for("cli"))
    magic_parser = _leaf(magics.PARSER, op.words_for("magic"))
    cli_flags = {k: v for k, v in flags(cli_parser).items() if k not in DOOR_GLOBALS}
    assert cli_flags == flags(magic_parser)


@pytest.mark.parametrize("argv", [
    ["items", "--sweep", "S1", "--job", "train", "--limit", "5"],
    ["submit", "nb.ipynb", "--set", "image=x", "--wait", "-p", "a=1", "--name", "n"],
    ["sweep", "train", "--grid", "a=1,2", "--set", "x=1", "--wait"],
    ["queue", "pause", "cpu"],
    ["run", "nb.ipynb", "-p", "C=0.5", "--set", "k=v"],
])
def test_the_same_command_line_parses_to_the_same_values(argv: list[str]) -> None:
    via_cli = vars(cli.build_parser().parse_args(argv))
    via_magic = vars(magics.PARSER.parse_args(argv))
    via_cli.pop("store", None)
    assert via_cli["op"] == via_magic["op"]
    shared = set(via_cli) & set(via_magic)
    assert {k for k in shared if not k.startswith("command")} >= {"op"}
    assert {k: via_cli[k] for k in shared} == {k: via_magic[k] for k in shared}


def test_an_unknown_flag_is_refused_by_both_doors(capsys: pytest.CaptureFixture) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["items", "--bogus"])
    assert "--bogus" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--bogus"):
        magics.PARSER.parse_args(["items", "--bogus"])
