"""The private hooks of iot_connector/compat still hold on the installed asyncua and paho-mqtt: each exists with
the signature it was written against and behaves as the hook expects, and a release without it fails loudly,
naming the library, its version and the hook. The whole-notification behaviour against a real asyncua server is
in test_opcua_batches.py; the batched MQTT path under load in test_mqtt_wire.py."""

from __future__ import annotations

import inspect
import math
import select
import time
from importlib.metadata import version
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from asyncua import Client
from asyncua.common.subscription import Subscription
from asyncua.crypto.truststore import TrustStore
from paho.mqtt.enums import CallbackAPIVersion

from iot_connector.compat import LibraryChanged, require
from iot_connector.compat import asyncua as asyncua_compat
from iot_connector.compat import paho as paho_compat
from iot_connector.sources.mqtt.wire import BatchedClient, take_publishes
from tests.certs import self_signed
from tests.edge.sources.mosquitto import Mosquitto

CHECKS = [*asyncua_compat.CHECKS, *paho_compat.CHECKS]


@pytest.fixture
def fresh_checks():
    """`require` remembers a passed check; a simulated release must be checked anew (and forgotten after)."""
    require.cache_clear()
    yield
    require.cache_clear()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_every_hook_exists_with_its_signature_on_the_installed_version(check, fresh_checks):
    check()


def test_asyncua_still_flags_replayed_notifications_and_routes_them_through_the_hook():
    """Source-level: the flag the hook reads is set around Republish, and the caller still calls the hook."""
    source = inspect.getsource(Subscription)
    assert "self._replaying = True" in source
    assert "self._replaying = False" in source
    assert "self._explode_datachange(" in inspect.getsource(Subscription._explode_notifications)
    assert "self._explode_notifications(" in inspect.getsource(Subscription.publish_callback)


def test_asyncua_still_reads_the_stale_check_margin_we_set_off():
    """`no_stale_subscription_check` sets the margin asyncua's stale-subscription watchdog multiplies by."""
    assert "is_stale(self._stale_check_margin)" in inspect.getsource(Client._stale_watchdog_loop)
    client = Client("opc.tcp://127.0.0.1:4840")
    asyncua_compat.no_stale_subscription_check(client)
    assert client._stale_check_margin == math.inf
    with pytest.raises(LibraryChanged, match=r"no longer has asyncua\.Client\._stale_check_margin|_stale_check_margin"):
        asyncua_compat.no_stale_subscription_check(object.__new__(Client))


def test_the_checked_versions_are_the_installed_ones():
    """A new pin must be checked against the hooks (and the docstrings' version updated) before it lands."""
    assert version("asyncua") == asyncua_compat.CHECKED
    assert version("paho-mqtt") == paho_compat.CHECKED


def test_a_release_without_the_asyncua_hook_fails_naming_it(monkeypatch, fresh_checks):
    monkeypatch.delattr(Subscription, "_explode_datachange")
    with pytest.raises(LibraryChanged) as caught:
        asyncua_compat.whole_notifications(object.__new__(Subscription))
    message = str(caught.value)
    assert f"asyncua {version('asyncua')} no longer has" in message
    assert "asyncua.common.subscription.Subscription._explode_datachange" in message
    assert "pip install 'asyncua==2.1.0'" in message


def test_a_changed_signature_fails_too(monkeypatch, fresh_checks):
    monkeypatch.setattr(TrustStore, "_load_trust_location", lambda self, location, strict: [])
    with pytest.raises(LibraryChanged, match=r"_load_trust_location\(location\) \(it now takes \(location, strict\)\)"):
        asyncua_compat.TrustList([], [])


def test_a_release_without_the_paho_hook_fails_naming_it(monkeypatch, fresh_checks):
    monkeypatch.delattr(mqtt.Client, "_create_socket")
    with pytest.raises(
        LibraryChanged, match=rf"paho-mqtt {version('paho-mqtt')} no longer has .*Client\._create_socket"
    ):
        BatchedClient(CallbackAPIVersion.VERSION2)


async def test_the_trust_list_reads_single_files_and_asyncuas_folders(tmp_path):
    folder = tmp_path / "trusted"
    one = self_signed(folder, "server-a")
    two = self_signed(tmp_path, "server-b")
    trust = asyncua_compat.TrustList([folder, two.cert], [])
    from_folder = await trust._load_trust_location(folder)  # asyncua's own folder scan, through super()
    from_file = await trust._load_trust_location(two.cert)
    names = [c.subject.rfc4514_string() for c in [*from_folder, *from_file]]
    assert names == ["CN=server-a", "CN=server-b"], (one, names)
    await trust.load_trust()  # asyncua's public entry point goes through the hook for both


@pytest.mark.integration
def test_paho_connects_through_the_wrapped_socket(tmp_path):
    broker = Mosquitto(tmp_path).start()
    client = BatchedClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    reasons: list[mqtt.ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: reasons.append(reason)
    try:
        client.connect("127.0.0.1", broker.port)  # paho opens the socket through the hook and writes CONNECT
        assert client.socket() is client.buffer  # paho holds our wrapper, not its own socket
        deadline = time.monotonic() + 10
        while not reasons and time.monotonic() < deadline:
            select.select([client.buffer], [], [], 0.5)
            assert client.buffer.fill(), "the broker closed the connection"
            while take_publishes(client.buffer, False, [], {}):  # the CONNACK is paho's to handle
                client.loop_read()
        assert reasons, "no CONNACK within 10 s"
        assert not reasons[0].is_failure, reasons
    finally:
        client.disconnect()
        broker.stop()


def test_the_hook_modules_name_their_checked_version_in_the_docstring():
    for module in (asyncua_compat, paho_compat):
        assert f"checked with {module.DISTRIBUTION} {module.CHECKED}" in (module.__doc__ or ""), module.__name__
    assert Path(asyncua_compat.__file__).parent.name == "compat"
