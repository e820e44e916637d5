"""The uvicorn internals of osipi_connector/compat/uvicorn.py still hold on the installed version: the ASGI
`send` is a method of the per-request cycle that keeps the connection's transport (both HTTP protocols), and
without it the simulator fails loudly, naming uvicorn, its version and the hook. What the hook does for users
(dropped and truncated answers seen by a real client) is tested in test_transport.py."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from uvicorn.protocols.http import h11_impl, httptools_impl

from osipi_connector.compat import LibraryChanged
from osipi_connector.compat import uvicorn as uvicorn_compat


@pytest.mark.parametrize("protocol", [httptools_impl, h11_impl], ids=["httptools", "h11"])
def test_the_asgi_send_is_a_method_of_the_cycle_holding_the_transport(protocol):
    cycle = protocol.RequestResponseCycle
    assert "transport" in inspect.signature(cycle.__init__).parameters
    assert inspect.iscoroutinefunction(cycle.send)
    assert "self.transport = transport" in inspect.getsource(cycle.__init__)
    assert "self.send" in inspect.getsource(cycle.run_asgi)  # the bound method is what the app receives


def test_the_checked_version_is_the_installed_one():
    assert version("uvicorn") == uvicorn_compat.CHECKED
    assert f"checked with uvicorn {uvicorn_compat.CHECKED}" in (uvicorn_compat.__doc__ or "")


def test_a_server_without_the_transport_fails_naming_the_hook():
    async def send(message):  # what another server (or a future uvicorn) might hand the app
        pass

    with pytest.raises(LibraryChanged) as caught:
        uvicorn_compat.close_connection(send)
    assert f"uvicorn {version('uvicorn')}: the ASGI `send`" in str(caught.value)
    assert f"pip install 'uvicorn=={uvicorn_compat.CHECKED}'" in str(caught.value)
