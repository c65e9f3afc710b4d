"""Web views without a broker: Faust's View API, routes and their keys, pages, settings."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import shoal
from shoal.config import load_settings
from shoal.contrib.asgi import _pattern
from shoal.kafka.partitioner import KeySpace, partition_for_key
from shoal.web import Request, View
from shoal.web.exceptions import ValidationError
from shoal.web.routes import route_of


def request(method: str = "GET", path: str = "/", **kw: Any) -> Request:
    return Request(method, path, **kw)


async def test_a_function_page_answers_get_with_the_path_parameters() -> None:
    app = shoal.App("web-unit")

    @app.page("/hello/{name}/")
    async def hello(web: Any, req: Request, name: str) -> Any:
        return web.json({"hello": name, "q": req.query.get("q")})

    assert hello.view_path == "/hello/{name}/" and hello.view_name == "hello"
    assert hello.get_methods() == {"GET", "HEAD"}
    view = hello(app)
    response = await view.dispatch(
        request(path="/hello/ann/", query_string="q=1", match_info={"name": "ann"})
    )
    assert (response.status, response.text) == (200, '{"hello":"ann","q":"1"}')
    response = await view.dispatch(request("POST", match_info={"name": "ann"}))
    assert (response.status, response.text) == (405, '{"error":"Method POST not allowed."}')


async def test_a_view_class_answers_each_method_and_errors_as_json() -> None:
    app = shoal.App("web-unit")

    @app.page("/orders/", name="orders")
    class Orders(shoal.web.View):
        async def get(self, req: Request) -> Any:
            raise self.NotFound("no orders", shop="a")

        async def post(self, req: Request) -> Any:
            body = await req.json()
            return self.json(body, status=201, headers={"X-Id": "1"})

        async def put(self, req: Request) -> Any:
            return self.text("plain")

        async def delete(self, req: Request) -> Any:
            return None

    assert Orders.get_methods() == {"GET", "HEAD", "POST", "PUT", "DELETE"}
    view = Orders(app)
    got = await view.dispatch(request())
    assert (got.status, got.text) == (404, '{"error":"no orders","shop":"a"}')
    made = await view.dispatch(request("POST", body=b'{"id": 7}'))
    assert (made.status, made.text, made.headers) == (201, '{"id":7}', {"X-Id": "1"})
    bad = await view.dispatch(request("POST", body=b"{"))
    assert bad.status == 400 and "not valid JSON" in bad.text
    put = await view.dispatch(request("PUT"))
    assert (put.status, put.content_type, put.text) == (200, "text/plain", "plain")
    assert (await view.dispatch(request("DELETE"))).status == 204


def test_pages_must_be_views_or_functions_at_absolute_paths() -> None:
    app = shoal.App("web-unit")
    with pytest.raises(TypeError, match=r"subclass of shoal\.web\.View"):
        app.page("/x/")(int)
    with pytest.raises(ValueError, match="must start with '/'"):
        app.page("x/")(lambda web, req: None)


def test_routes_name_their_key_and_the_partition_it_lives_in() -> None:
    app = shoal.App("web-unit", topic_partitions=8)
    counts = app.Table("counts", default=int)
    orders = app.topic("orders", key_type=int, key_serializer="json", partitions=6)
    with pytest.raises(TypeError, match="needs one of query_param, match_info or exact_key"):
        app.table_route(table=counts)

    @app.page("/count/{word}/")
    @app.table_route(table=counts, match_info="word")
    async def count(web: Any, req: Request, word: str) -> Any:
        return web.json(counts[word])

    @app.page("/order/")
    class Order(View):
        @app.topic_route(topic=orders, query_param="id")
        async def get(self, req: Request) -> Any:
            return self.json(None)

        async def post(self, req: Request) -> Any:
            return self.json(None)

    route = route_of(count, "GET")
    assert route is not None and route_of(count, "HEAD") == route
    assert route.key_text({"word": "hello"}, {}) == "hello"
    # The app's key_serializer ('raw') encodes the events' keys: so the route does.
    assert route.partition("hello") == partition_for_key(b"hello", 8)
    order = route_of(Order, "GET")
    assert order is not None and route_of(Order, "POST") is None
    assert order.partition("42") == partition_for_key(b"42", 6)  # json of the int 42
    with pytest.raises(ValidationError, match="query parameter 'id' is required"):
        order.key_text({}, {})
    with pytest.raises(ValidationError, match="has int keys: 'x' is not one"):
        order.partition("x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app.table_route(counts, "word")
    assert "shard_param is deprecated" in str(caught[0].message)


def test_keyspaces_turn_text_into_keys_of_their_type() -> None:
    space = KeySpace("table 't'", 4, "json", "bool")
    assert space.key("true") is True and space.key("0") is False
    with pytest.raises(ValueError, match="has bool keys: 'maybe' is not one"):
        space.key("maybe")
    assert KeySpace("t", 4, "raw").key("x") == "x"


def test_web_settings_bind_locally_by_default_and_say_where_the_host_is() -> None:
    conf = load_settings({"id": "w"}, env={}, config_file=False)
    assert (conf.web_bind, conf.web_port, conf.web_enabled) == ("127.0.0.1", 6066, True)
    assert conf.web_url() == "http://127.0.0.1:6066"
    assert conf.web_url(7001) == "http://127.0.0.1:7001"
    named = load_settings(
        {"id": "w", "web_bind": "0.0.0.0", "web_host": "node-3"}, env={}, config_file=False
    )
    assert named.web_url() == "http://node-3:6066"
    given = load_settings(
        {"id": "w", "canonical_url": "http://lb.example:80/"}, env={}, config_file=False
    )
    assert given.web_url() == "http://lb.example:80"
    with pytest.warns(FutureWarning, match="'metrics_port' .* is deprecated: use 'web_port'"):
        old = load_settings({"id": "w", "metrics_port": 0}, env={}, config_file=False)
    assert old.web_port == 0
    from_env = load_settings({"id": "w"}, env={"WEB_PORT": "7000"}, config_file=False)
    assert from_env.web_port == 7000


def test_asgi_paths_match_as_aiohttp_routes_do() -> None:
    pattern = _pattern("/count/{word}/{n:\\d+}")
    match = pattern.match("/count/hello/12")
    assert match is not None and match.groupdict() == {"word": "hello", "n": "12"}
    assert pattern.match("/count/hello/x") is None
    assert pattern.match("/count/a/b/12") is None
