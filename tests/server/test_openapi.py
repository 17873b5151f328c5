"""openapi.yaml is a valid OpenAPI document, lists exactly the served routes, and describes the
answers the server really gives."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import launch_jupyter.server
from launch_jupyter.server.handlers import ROUTES

from ..conftest import write_notebook
from .conftest import Api

SPEC_PATH = Path(launch_jupyter.server.__file__).with_name("openapi.yaml")


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def check(spec: dict, value: Any, schema: str, many: bool = False) -> None:
    """``value`` validates against ``#/components/schemas/<schema>`` (a list of them: many)."""
    registry = Registry().with_resource("urn:spec", Resource(spec, DRAFT202012))
    ref = {"$ref": f"urn:spec#/components/schemas/{schema}"}
    jsonschema.Draft202012Validator(
        {"type": "array", "items": ref} if many else ref, registry=registry
    ).validate(value)


def test_spec_is_valid_openapi(spec: dict) -> None:
    validator = pytest.importorskip("openapi_spec_validator")  # a test extra, not a dependency
    validator.validate(spec)


def test_spec_documents_every_route_and_verb(spec: dict) -> None:
    served = {}
    for pattern, handler in ROUTES:
        path = "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).replace("{item_id}", "{id}")
        served[path] = {v for v in ("get", "post", "patch", "delete") if v in handler.__dict__}
    documented = {path: set(ops) - {"parameters"} for path, ops in spec["paths"].items()}
    assert documented == served


def test_items_listing_documents_every_filter_of_the_paging_rule(spec: dict) -> None:
    params = {p["name"] for p in spec["paths"]["/items"]["get"]["parameters"]}
    assert {"queue", "state", "job", "sweep", "limit", "offset"} <= params


async def test_answers_match_the_documented_schemas(api: Api, spec: dict, jp_root_dir: Path,
                                                    client: Any) -> None:
    write_notebook(jp_root_dir, "nb.ipynb", ["print(x)"], parameters="x = 1")
    status, queue = await api("POST", "queues", body={"name": "gpu", "timeout": 5.5})
    check(spec, queue, "Queue")
    check(spec, (await api("GET", "queues"))[1], "Queue", many=True)
    status, job = await api("POST", "jobs", body={"path": "nb.ipynb"})
    check(spec, job, "Job")
    check(spec, (await api("GET", "jobs"))[1], "Job", many=True)
    check(spec, (await api("GET", "jobs", "nb"))[1], "Job", many=True)
    status, item = await api("POST", "items", body={"job": "nb", "parameters": {"x": 2}})
    check(spec, item, "Item")
    check(spec, (await api("GET", "items"))[1], "ItemList")
    check(spec, (await api("GET", "items", item["id"], "logs"))[1], "LogPage")
    check(spec, (await api("POST", "items", item["id"], "cancel"))[1], "Item")
    check(spec, (await api("POST", "items", item["id"], "requeue"))[1], "Item")
    check(spec, (await api("GET", "items", "nope"))[1], "Error")
    agent = client.agent(["gpu"]).start()
    try:
        check(spec, (await api("GET", "agents"))[1], "Agent", many=True)
    finally:
        agent.stop()
