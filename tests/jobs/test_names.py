from __future__ import annotations

import pytest

from launch_jupyter.errors import InvalidNameError
from launch_jupyter.jobs import default_job_name, parse_ref, validate_alias, validate_name


@pytest.mark.parametrize("name", ["train", "a", "A1.b-c_d", "9lives", "x" * 63])
def test_valid_names_are_returned(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", "a b", "-x", ".hidden", "x" * 64, "café", "a\n", "١٢", None, 3]
)
def test_invalid_names_are_refused_with_the_rule(name):
    with pytest.raises(InvalidNameError, match="names use letters, digits"):
        validate_name(name)


def test_invalid_name_message_names_what_and_value():
    with pytest.raises(InvalidNameError, match=r"invalid queue name '\.\./x'"):
        validate_name("../x", what="queue")


def test_alias_cannot_look_like_a_version():
    with pytest.raises(InvalidNameError, match="'v3' looks like a version.*'best'"):
        validate_alias("v3")


def test_alias_latest_is_automatic():
    with pytest.raises(InvalidNameError, match="'latest' always follows the newest version"):
        validate_alias("latest")


def test_alias_follows_the_name_rule():
    assert validate_alias("best") == "best"
    assert validate_alias("v3-final") == "v3-final"
    with pytest.raises(InvalidNameError, match="invalid alias name"):
        validate_alias("../best")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("train", ("train", None, None)),
        ("train:v3", ("train", 3, None)),
        ("train:best", ("train", None, "best")),
        ("train:latest", ("train", None, None)),
    ],
)
def test_parse_ref_forms(ref, expected):
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["", ":v1", "train:", "a:b:c", "t:a b", "t:-x"])
def test_malformed_refs_list_the_accepted_forms(ref):
    with pytest.raises(InvalidNameError, match="job refs are NAME, NAME:vN or NAME:ALIAS"):
        parse_ref(ref)


def test_ref_with_an_invalid_name_is_refused():
    with pytest.raises(InvalidNameError, match=r"invalid job name '\.\./x'"):
        parse_ref("../x:v1")


def test_ref_versions_count_from_one():
    with pytest.raises(InvalidNameError, match="versions count from v1"):
        parse_ref("train:v0")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/nb/train.ipynb", "train"),
        ("my notebook (copy).ipynb", "my-notebook--copy-"),
        ("_private.py", "job-_private"),
        ("été.ipynb", "job--t-"),
        ("x" * 80 + ".py", "x" * 63),
    ],
)
def test_default_job_name_is_derived_from_the_file_stem(path, expected):
    assert default_job_name(path) == expected
