"""The Celery app's broker and backend wiring (worker/queue/app.py): our transport for Redis and Sentinel
brokers, the Sentinel master named to kombu and Celery alike, the producer's polling backends."""

from __future__ import annotations

from celery.backends.redis import SentinelBackend

from tests.conftest import MANIFESTS
from worker.config import Settings
from worker.producer.results import PollingRedisBackend, PollingSentinelBackend
from worker.queue.app import make_app
from worker.queue.backend import WasmqSentinelBackend
from worker.queue.transport import SentinelTransport, Transport

SENTINELS = "sentinel://:pw@127.0.0.1:1;sentinel://127.0.0.1:2/3"


def settings(**kw: object) -> Settings:
    return Settings(manifests=MANIFESTS, cache_dir=None, **kw)  # type: ignore[arg-type]


def test_a_sentinel_url_gets_our_sentinel_transport_and_the_master_name_everywhere() -> None:
    app = make_app(settings(redis_url=SENTINELS, sentinel_master="mymaster", sentinel_password="s3cret"))
    conf = app.conf
    assert conf.broker_url == "sentinel://:pw@127.0.0.1:1/3;sentinel://:pw@127.0.0.1:2/3"
    assert conf.result_backend == f"worker.queue.backend.WasmqSentinelBackend+{conf.broker_url}"
    assert isinstance(app.backend, WasmqSentinelBackend) and isinstance(app.backend, SentinelBackend)
    for options in (conf.broker_transport_options, conf.result_backend_transport_options):
        assert options["master_name"] == "mymaster"
        assert options["sentinel_kwargs"]["password"] == "s3cret"
        assert options["visibility_timeout"] == 3600
    connection = app.connection_for_write()
    assert connection.transport_cls == "worker.queue.transport:SentinelTransport"
    assert isinstance(connection.transport, SentinelTransport)
    channel_cls = connection.transport.Channel
    assert "master_name" in channel_cls.from_transport_options and "wasmq_node" in channel_cls.from_transport_options
    producer = make_app(settings(redis_url=SENTINELS, sentinel_master="mymaster"), producer=True)
    assert isinstance(producer.backend, PollingSentinelBackend)
    assert [h["port"] for h in producer.backend.connparams["hosts"]] == [1, 2]


def test_a_redis_url_gets_our_transport_and_other_brokers_their_own() -> None:
    app = make_app(settings(redis_url="redis://127.0.0.1:1/0"), producer=True)
    assert isinstance(app.connection_for_write().transport, Transport)
    assert not isinstance(app.connection_for_write().transport, SentinelTransport)
    assert isinstance(app.backend, PollingRedisBackend)
    assert "master_name" not in app.conf.broker_transport_options
    amqp = make_app(settings(broker_url="amqp://guest@127.0.0.1:1//"))
    assert amqp.conf.broker_transport is None and amqp.conf.broker_url == "amqp://guest@127.0.0.1:1//"
