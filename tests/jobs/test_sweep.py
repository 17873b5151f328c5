"""Sweep points: grids typed by the schema, random draws within bounds, and bad input."""

from __future__ import annotations

import pytest

from launch_jupyter.errors import ParameterError
from launch_jupyter.jobs import schema_for
from launch_jupyter.jobs.sweep import grid_points, parse_grid, random_points, sweep_points

SCHEMA = schema_for(
    {"lr": 0.01, "layers": 2, "optimizer": "adam", "shuffle": True, "tags": ["a"], "seed": 0},
    {"lr": {"minimum": 0.0001, "maximum": 1}, "layers": {"minimum": 1, "exclusiveMaximum": 9},
     "optimizer": {"enum": ["adam", "sgd", "rmsprop"]}},
)


def test_grid_is_the_cartesian_product_typed_by_the_schema() -> None:
    points = sweep_points(SCHEMA, grid=["lr=0.001,0.01,0.1", "layers=2,4"])
    assert len(points) == 6
    assert points[0] == {"lr": 0.001, "layers": 2}
    assert points[-1] == {"lr": 0.1, "layers": 4}
    assert all(isinstance(p["layers"], int) and isinstance(p["lr"], float) for p in points)


def test_grid_values_may_be_a_json_array_when_they_hold_commas() -> None:
    grid = parse_grid(['tags=[["a,b"], ["c"]]', 'optimizer=["sgd", "adam"]'], SCHEMA)
    assert grid == {"tags": [["a,b"], ["c"]], "optimizer": ["sgd", "adam"]}


def test_fixed_parameters_join_every_point_but_cannot_also_be_swept() -> None:
    points = sweep_points(SCHEMA, grid={"layers": [1, 2]}, fixed={"seed": 7})
    assert points == [{"seed": 7, "layers": 1}, {"seed": 7, "layers": 2}]
    with pytest.raises(ParameterError, match="both fixed"):
        sweep_points(SCHEMA, grid=["seed=1,2"], fixed={"seed": 7})


def test_random_points_stay_within_bounds_and_repeat_with_a_seed() -> None:
    points = random_points(SCHEMA, 50, seed=3)
    assert len(points) == 50
    for p in points:
        assert set(p) == {"lr", "layers", "optimizer", "shuffle"}  # bounded, enum, boolean
        assert 0.0001 <= p["lr"] <= 1 and 1 <= p["layers"] <= 8
        assert p["optimizer"] in ("adam", "sgd", "rmsprop")
    assert random_points(SCHEMA, 5, seed=3) == points[:5]
    assert sweep_points(SCHEMA, random=4, fixed={"layers": 3}, seed=1)[0]["layers"] == 3


@pytest.mark.parametrize("grid, message", [
    (["lr"], "malformed grid axis"),
    (["lr=0.1,,0.2"], "empty value"),
    (["lr=5"], "must be <= 1"),
    (["layers=two"], "must be an integer"),
    (["nope=1,2"], "unknown parameter 'nope'"),
    (["lr=0.1", "lr=0.2"], "given twice"),
    (["tags=[1, 2"], "not a JSON array"),
])
def test_bad_grids_name_the_problem(grid: list[str], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        sweep_points(SCHEMA, grid=grid)


def test_random_needs_something_to_draw_and_a_positive_count() -> None:
    unbounded = schema_for({"seed": 0, "name": "x"})
    with pytest.raises(ParameterError, match="nothing to draw"):
        random_points(unbounded, 3)
    with pytest.raises(ParameterError, match="positive"):
        random_points(SCHEMA, 0)
    with pytest.raises(ParameterError, match="a sweep needs --config SWEEP.yaml, --grid"):
        sweep_points(SCHEMA)
    with pytest.raises(ParameterError, match="not both"):
        sweep_points(SCHEMA, grid=["lr=0.1"], random=2)


def test_huge_grids_are_refused() -> None:
    with pytest.raises(ParameterError, match="more than"):
        grid_points({"a": list(range(200)), "b": list(range(200))})


def test_cli_sweep_and_python_sweep_group_their_items(cli, client, tmp_path) -> None:  # noqa: ANN001
    import json

    import launch_jupyter
    from tests.conftest import write_script

    write_script(tmp_path, "train.py", """\
        import launch_jupyter
        p = launch_jupyter.parameters(
            lr=0.01,
            layers=2,  # launch: minimum=1, maximum=4
        )
        """)
    out = cli("sweep", "train", "--grid", "lr=0.1,0.2", check=False)
    assert out.returncode == 2 and "job 'train'" in out.stderr  # no such job yet
    cli("job", "create", str(tmp_path / "train.py"), check=True)
    made = json.loads(cli("sweep", "train", "--grid", "lr=0.1,0.2", "--grid", "layers=1,3",
                          "--json", check=True).stdout)
    assert len(made["items"]) == 4
    assert {i["sweep_id"] for i in client.items()} == {made["sweep_id"]}
    bad = cli("sweep", "train", "--grid", "layers=9")
    assert bad.returncode == 2 and "layers" in bad.stderr and "<= 4" in bad.stderr
    sweep = launch_jupyter.sweep("train", random=3, seed=1, client=client)
    assert len(sweep) == 3 and {i.info()["sweep_id"] for i in sweep} == {sweep.id}
    assert len(client.items()) == 7
