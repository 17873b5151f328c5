"""Authentication and XSRF: every route needs credentials; cookie sessions need the XSRF token."""

from __future__ import annotations

import json
import re
import urllib.parse
from http.cookies import SimpleCookie
from typing import Any

from jupyter_server.auth import Authorizer
from tornado import web
from tornado.httpclient import HTTPResponse
from tornado.routing import PathMatches

from launch_jupyter.server.handlers import ROUTES

VERBS = ("get", "post", "put", "patch", "delete")


def launch_routes(app: web.Application) -> list[tuple[str, type[web.RequestHandler]]]:
    """(regex, handler) of every route the server has whose path holds ``/launch/api``."""
    found = []

    def walk(rules: list[Any]) -> None:
        for rule in rules:
            target = rule.target
            if hasattr(target, "rules"):
                walk(target.rules)
            elif isinstance(rule.matcher, PathMatches) and "/launch/api" in (
                rule.matcher.regex.pattern
            ):
                found.append((rule.matcher.regex.pattern, target))

    walk(app.default_router.rules)
    return found


def concrete(pattern: str) -> str:
    """A URL path the route pattern matches, with ``x`` for every named group."""
    return re.sub(r"\(\?P<\w+>[^)]*\)", "x", pattern).rstrip("$")


def verbs_of(handler: type[web.RequestHandler]) -> list[str]:
    return [v for v in VERBS if getattr(handler, v) is not getattr(web.RequestHandler, v)]


async def raw_fetch(client: Any, path: str, method: str = "GET", body: str | None = None,
                    headers: dict[str, str] | None = None) -> HTTPResponse:
    """A request with exactly these headers (jp_fetch would add the token)."""
    if method in ("POST", "PATCH") and body is None:
        body = "{}"
    return await client.fetch(path, method=method, body=body, headers=headers or {},
                              raise_error=False, follow_redirects=False)


async def test_every_route_refuses_requests_without_credentials(
    jp_serverapp: Any, http_server_client: Any, manager: Any
) -> None:
    assert jp_serverapp.identity_provider.token  # a token is set; the requests send none
    routes = launch_routes(jp_serverapp.web_app)
    assert len(routes) == len(ROUTES) >= 12, routes  # every route the extension registers
    token = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    checked = 0
    for pattern, handler in routes:
        path = concrete(pattern)
        for verb in verbs_of(handler):
            response = await raw_fetch(http_server_client, path, verb.upper())
            assert response.code == 403, (verb, path, response.code)
            assert "message" in json.loads(response.body), (verb, path)
            # the same request with the token gets past authentication
            authed = await raw_fetch(http_server_client, path, verb.upper(), headers=token)
            assert authed.code != 403, (verb, path, authed.body)
            checked += 1
    assert checked == sum(len(verbs_of(handler)) for _, handler in ROUTES) >= 16


def cookies_of(response: HTTPResponse, jar: dict[str, str]) -> dict[str, str]:
    for header in response.headers.get_list("Set-Cookie"):
        for name, morsel in SimpleCookie(header).items():
            jar[name] = morsel.value
    return jar


async def test_cookie_session_post_needs_the_xsrf_token(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, manager: Any
) -> None:
    login = f"{jp_base_url}login"
    jar = cookies_of(await raw_fetch(http_server_client, login), {})
    xsrf = jar["_xsrf"]
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    form = urllib.parse.urlencode({"password": jp_serverapp.identity_provider.token,
                                   "_xsrf": xsrf})
    response = await raw_fetch(http_server_client, login, "POST", form, {"Cookie": cookie})
    assert response.code == 302, response.body
    jar = cookies_of(response, jar)
    assert any(name.startswith("username-") for name in jar), jar
    session = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    queues = f"{jp_base_url}launch/api/queues"

    # the cookie alone authenticates reads...
    response = await raw_fetch(http_server_client, queues, headers=session)
    assert response.code == 200 and [q["name"] for q in json.loads(response.body)] == ["local"]
    # ...but a write without the XSRF token is refused and changes nothing
    body = json.dumps({"name": "gpu"})
    response = await raw_fetch(http_server_client, queues, "POST", body, session)
    assert response.code == 403
    assert "xsrf" in json.loads(response.body)["message"].lower()
    response = await raw_fetch(http_server_client, queues, headers=session)
    assert [q["name"] for q in json.loads(response.body)] == ["local"]

    response = await raw_fetch(http_server_client, queues, "POST", body,
                               {**session, "X-XSRFToken": xsrf})
    assert response.code == 201, response.body
    assert json.loads(response.body)["name"] == "gpu"


class DenyAll(Authorizer):
    """An authorizer that refuses everything and remembers what it was asked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asked: list[tuple[str, str]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        self.asked.append((action, resource))
        return False


#: (verb, handler) of queue and store administration, authorized on ``launch-queues``
ADMIN = {("post", "QueuesHandler"), ("patch", "QueueHandler"), ("delete", "QueueHandler"),
         ("post", "QueuePauseHandler"), ("post", "QueueResumeHandler"),
         ("post", "VacuumHandler")}


async def test_every_verb_is_authorized_on_the_launch_resource(
    jp_serverapp: Any, http_server_client: Any, manager: Any
) -> None:
    deny = DenyAll(identity_provider=jp_serverapp.identity_provider)
    jp_serverapp.web_app.settings["authorizer"] = deny
    token = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    expected = []
    for pattern, handler in launch_routes(jp_serverapp.web_app):
        for verb in verbs_of(handler):
            response = await raw_fetch(http_server_client, concrete(pattern), verb.upper(),
                                       headers=token)
            assert response.code == 403, (verb, pattern)
            assert "not authorized" in json.loads(response.body)["message"]
            resource = "launch-queues" if (verb, handler.__name__) in ADMIN else "launch"
            expected.append(("read" if verb == "get" else "write", resource))
    assert deny.asked == expected
    assert ("write", "launch-queues") in expected


class SubmitButNoQueueAdmin(Authorizer):
    """Users may read and submit (``launch``) but not administer queues (``launch-queues``)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "launch-queues"


async def test_queue_administration_is_its_own_permission(
    jp_serverapp: Any, api: Any, jp_root_dir: Any
) -> None:
    from ..conftest import write_notebook

    jp_serverapp.web_app.settings["authorizer"] = SubmitButNoQueueAdmin(
        identity_provider=jp_serverapp.identity_provider)
    status, body = await api("POST", "queues", body={"name": "gpu",
                                                     "config": {"template": {"x": 1}}})
    assert status == 403, body
    assert "launch-queues" in body["message"]
    status, queues = await api("GET", "queues")
    assert status == 200 and [q["name"] for q in queues] == ["local"]  # nothing was made
    # Submitting and reading still work.
    write_notebook(jp_root_dir, "nb.ipynb", ["print(1)"])
    status, job = await api("POST", "jobs", body={"path": "nb.ipynb"})
    assert status == 201, job
    status, item = await api("POST", "items", body={"job": job["ref"], "queue": "local"})
    assert status == 201, item
    status, body = await api("POST", "items", item["id"], "cancel")
    assert status == 200 and body["state"] == "cancelled"
