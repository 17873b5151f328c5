"""Charts of results: Vega-Lite specs of each metric against step and of a sweep's metric
against its parameters, compiled by the real vega-lite the lab extension ships, and shown by
the item card and the sweep handle in a notebook."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from launch_jupyter.api import Launch
from launch_jupyter.views.charts import MIME, comparison_chart, field, metric_chart
from tests.conftest import write_script

VEGA_LITE = Path(__file__).parent.parent / "labextension/node_modules/vega-lite/build/vega-lite.js"
COMPILE = """
const vl = require(process.argv[1]);
const spec = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const warnings = [];
const logger = {level() { return this; }, info() { return this; }, debug() { return this; },
  warn(...m) { warnings.push(m.join(' ')); return this; },
  error(...m) { throw new Error(m.join(' ')); }};
const out = vl.compile(spec, {logger});
const marks = JSON.stringify(out.spec).match(/"type":"(symbol|line)"/g) || [];
console.log(JSON.stringify({warnings, marks: marks.length, data: out.spec.data.length}));
"""
OBJECTIVE = """\
import launch_jupyter
p = launch_jupyter.parameters(x=0.5, opt="adam")
for step in range(3):
    launch_jupyter.log(loss=(p.x - 1) ** 2 + 1 / (step + 1), acc=p.x / (step + 1))
"""


def compile_spec(spec: dict) -> dict:
    """The Vega the real vega-lite compiles ``spec`` to: its warnings and mark count."""
    if not VEGA_LITE.exists() or shutil.which("node") is None:
        pytest.fail("vega-lite is not installed: run `cd labextension && jlpm install`")
    done = subprocess.run(["node", "-e", COMPILE, str(VEGA_LITE)], input=json.dumps(spec),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_metric_chart_draws_one_line_per_metric_against_step() -> None:
    points = [{"name": n, "step": s, "value": v, "time": "t"}
              for s in range(4) for n, v in (("loss", 1 / (s + 1)), ("acc.top1", s / 4))]
    spec = metric_chart(points)
    assert spec["$schema"].endswith("vega-lite/v5.json")
    assert {p["name"] for p in spec["data"]["values"]} == {"loss", "acc.top1"}
    assert spec["spec"]["encoding"]["x"]["field"] == "step"
    compiled = compile_spec(spec)
    assert compiled["warnings"] == [] and compiled["marks"] >= 1
    assert metric_chart([]) is None


def test_metric_chart_thins_long_runs_but_keeps_the_last_point() -> None:
    points = [{"name": "loss", "step": s, "value": float(s)} for s in range(10_000)]
    values = metric_chart(points, max_points=100)["data"]["values"]
    assert len(values) == 100 and values[-1]["step"] == 9_999 and values[0]["step"] == 0


def test_comparison_chart_plots_the_metric_against_each_varying_parameter() -> None:
    rows = [{"id": f"i{k}", "state": "succeeded", "parameters": {"lr": lr, "opt.name": o},
             "metrics": {"acc": a}, "duration": 1.0}
            for k, (lr, o, a) in enumerate([(0.1, "adam", 0.8), (0.01, "sgd", 0.9),
                                            (0.001, "adam", 0.7)])]
    rows.append({"id": "none", "state": "failed", "parameters": {"lr": 1, "opt.name": "sgd"},
                 "metrics": {}, "duration": None})
    spec = comparison_chart(rows, "acc", "maximize")
    assert [c["encoding"]["x"]["title"] for c in spec["hconcat"]] == ["lr", "opt.name"]
    assert [c["encoding"]["x"]["type"] for c in spec["hconcat"]] == ["quantitative", "nominal"]
    assert spec["hconcat"][1]["encoding"]["x"]["field"] == field("opt.name") == "opt\\.name"
    best = [v for v in spec["data"]["values"] if v["lj_best"]]
    assert [v["lj_item"] for v in best] == ["i1"]  # maximize: 0.9
    assert len(spec["data"]["values"]) == 3  # the row without the metric is left out
    assert compile_spec(spec)["warnings"] == []
    # minimize picks the lowest; no parameter varies: the metric per item; no metric: None.
    low = comparison_chart(rows, "acc", "minimize")
    assert [v["lj_item"] for v in low["data"]["values"] if v["lj_best"]] == ["i2"]
    flat = comparison_chart([dict(r, parameters={}) for r in rows[:2]], "acc", "maximize")
    assert flat["encoding"]["x"]["field"] == "lj_item" and compile_spec(flat)["marks"] >= 1
    assert comparison_chart(rows, "nope", "maximize") is None


def test_item_and_sweep_show_their_charts_in_a_notebook(client: Launch, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    import IPython.display

    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    sweep = client.sweep("obj", config={"method": "grid",
                                        "metric": {"name": "loss", "goal": "minimize"},
                                        "parameters": {"x": {"values": [0.0, 0.9, 2.5]}}})
    client.agent(max_jobs=2, until_idle=True).run()
    shown: list[dict] = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False: shown.append(obj))
    item = client.item(sweep[1].id)
    item._ipython_display_()
    card, chart = shown
    assert f"data-item='{item.id}'" in card["text/html"]
    assert {p["name"] for p in chart[MIME]["data"]["values"]} == {"loss", "acc"}
    assert len(chart[MIME]["data"]["values"]) == 6
    shown.clear()
    sweep._ipython_display_()
    table, comparison = shown
    best = client.result_rows(sweep=sweep.id)[0]
    assert best["parameters"] == {"x": 0.9}
    assert f"lj-best' data-best='true' data-item='{best['id']}'" in table["text/html"]
    assert "3 succeeded" in table["text/html"]
    values = comparison[MIME]["data"]["values"]
    assert [v["lj_item"] for v in values if v["lj_best"]] == [best["id"]]
    assert compile_spec(comparison[MIME])["warnings"] == []
    assert sweep.chart() == comparison[MIME]  # the handle's spec (it raised TypeError)


def test_a_sweep_without_a_metric_names_the_charted_metric_in_text(
        client: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A --grid sweep has no metric; its chart plots the first metric logged, but the text
    # fallback (terminal IPython) read "sweep ID: None by parameter".
    import IPython.display

    client.create_job(write_script(tmp_path, "obj.py", OBJECTIVE))
    sweep = client.sweep("obj", grid={"x": [0.0, 0.9]})
    client.agent(max_jobs=2, until_idle=True).run()
    shown: list[dict] = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False: shown.append(obj))
    sweep._ipython_display_()
    comparison = shown[-1]
    assert comparison["text/plain"] == f"sweep {sweep.id}: acc by parameter"
