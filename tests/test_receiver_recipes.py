"""The Django, Flask and FastAPI recipes of docs/receiving.md, run as written there.

Each test is skipped when its framework is not installed (``pip install -e '.[recipes]'``).
"""

from __future__ import annotations

import json
import sys
import types

import pytest

from smsgate import Gateway
from smsgate.receiving import Receiver
from smsgate.default_plugins.loopback import signature

SECRET = "recipe-secret"


def signed(msg_id, nonce):
    import time

    body = json.dumps({"reports": [{"msgId": msg_id, "phone": "13800138000", "status": "DELIVERED"}]}).encode()
    ts = str(int(time.time()))
    return body, {"Content-Type": "application/json", "X-Timestamp": ts, "X-Nonce": nonce,
                  "X-Signature": signature(SECRET, ts, nonce, body)}


@pytest.fixture
def receiver(tmp_path):
    gw = Gateway({"providers": {"loopback": {"base_url": "http://127.0.0.1:9", "api_secret": SECRET}}})
    rc = Receiver(gw, spool=tmp_path / "spool.sqlite3", poll_interval=0.05)
    got = []
    rc.on_report(got.append, name="collect")
    rc.got = got
    yield rc
    rc.close()


def test_flask_dispatcher_middleware(receiver):
    flask = pytest.importorskip("flask")
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    app = flask.Flask("shop")
    # -- recipe (docs/receiving.md): mount the receiver's WSGI app under /sms --
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/sms": receiver.wsgi_app})
    # --
    client = app.test_client()
    body, headers = signed("F1", "f1")
    resp = client.post("/sms/callbacks/loopback", data=body, headers=headers)
    assert resp.status_code == 200 and resp.get_json() == {"code": "OK"}
    body2, headers2 = signed("F2", "f1")  # the used nonce with new events: a replay
    assert client.post("/sms/callbacks/loopback", data=body2, headers=headers2).status_code == 401
    assert client.post("/sms/callbacks/nosuch", data=b"{}").status_code == 404
    assert receiver.drain()
    assert [r.message_id for r in receiver.got] == ["F1"]


def test_flask_view(receiver):
    flask = pytest.importorskip("flask")
    from smsgate import CallbackRequest

    app = flask.Flask("shop")

    # -- recipe (docs/receiving.md): a view of your own --
    @app.post("/hooks/sms/<provider>")
    def sms_callback(provider):
        req = flask.request
        answer = receiver.handle(provider, CallbackRequest(
            method=req.method, path=req.path, headers=list(req.headers.items()), body=req.get_data(),
            remote_addr=req.remote_addr))
        return answer.body, answer.status, list(answer.headers)
    # --

    body, headers = signed("F2", "f2")
    resp = app.test_client().post("/hooks/sms/loopback", data=body, headers=headers)
    assert resp.status_code == 200
    assert receiver.drain()
    assert [r.message_id for r in receiver.got] == ["F2"]


def test_fastapi_mount(receiver):
    fastapi = pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    app = fastapi.FastAPI()
    # -- recipe (docs/receiving.md) --
    app.mount("/sms", receiver.asgi_app)
    # --
    with TestClient(app) as client:
        body, headers = signed("A1", "a1")
        resp = client.post("/sms/callbacks/loopback", content=body, headers=headers)
        assert resp.status_code == 200 and resp.json() == {"code": "OK"}
        body2, headers2 = signed("A2", "a1")  # the used nonce with new events: a replay
        assert client.post("/sms/callbacks/loopback", content=body2, headers=headers2).status_code == 401
        assert client.post("/sms/callbacks/nosuch", content=b"{}").status_code == 404
    assert receiver.drain()
    assert [r.message_id for r in receiver.got] == ["A1"]


def test_django_view(receiver):
    pytest.importorskip("django")
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEBUG=False, ROOT_URLCONF="smsgate_recipe_urls", ALLOWED_HOSTS=["testserver"],
                           SECRET_KEY="x" * 50, MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
                           INSTALLED_APPS=[])
        django.setup()
    from django.http import HttpResponse
    from django.test import Client
    from django.urls import clear_url_caches, path
    from django.views.decorators.csrf import csrf_exempt

    from smsgate import CallbackRequest

    # -- recipe (docs/receiving.md): urls.py --
    @csrf_exempt
    def sms_callback(request, provider):
        answer = receiver.handle(provider, CallbackRequest(
            method=request.method, path=request.path, headers=list(request.headers.items()), body=request.body,
            remote_addr=request.META.get("REMOTE_ADDR")))
        return HttpResponse(answer.body, status=answer.status, content_type=answer.header("Content-Type"))

    urlpatterns = [path("sms/callbacks/<str:provider>", sms_callback)]
    # --
    module = types.ModuleType("smsgate_recipe_urls")
    module.urlpatterns = urlpatterns
    sys.modules["smsgate_recipe_urls"] = module
    clear_url_caches()
    try:
        client = Client()
        body, headers = signed("D1", "d1")
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Type"}
        resp = client.post("/sms/callbacks/loopback", data=body, content_type="application/json", **extra)
        assert resp.status_code == 200 and json.loads(resp.content) == {"code": "OK"}
        body2, headers2 = signed("D2", "d1")  # the used nonce with new events: a replay
        extra2 = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers2.items() if k != "Content-Type"}
        resp = client.post("/sms/callbacks/loopback", data=body2, content_type="application/json", **extra2)
        assert resp.status_code == 401
        assert receiver.drain()
    finally:
        sys.modules.pop("smsgate_recipe_urls", None)
    assert [r.message_id for r in receiver.got] == ["D1"]
