"""requests-kerberos methods ExplainedKerberosAuth (piwebapi/kerberos.py) overrides to turn Kerberos failures
into messages that say what to do: they still exist with the same signatures on the installed version and are
still what requests-kerberos calls, so an upgrade that renames them fails here instead of silently bringing
back tracebacks and bare 401s."""

from __future__ import annotations

import inspect
from importlib.metadata import version

import requests_kerberos  # the [kerberos] extra: `make test` installs every pin, so no skip

CHECKED = "0.15.0"


def test_the_checked_version_is_the_installed_one():
    from osipi_connector.piwebapi import kerberos

    assert version("requests-kerberos") == CHECKED
    assert f"checked with requests-kerberos {CHECKED}" in (kerberos.__doc__ or "")


def test_the_overridden_methods_keep_their_signatures_and_callers():
    auth = requests_kerberos.HTTPKerberosAuth
    assert list(inspect.signature(auth.generate_request_header).parameters) == [
        "self",
        "response",
        "host",
        "is_preemptive",
    ]
    assert list(inspect.signature(auth.handle_other).parameters) == ["self", "response"]
    assert "self.generate_request_header(" in inspect.getsource(auth.authenticate_user)
    assert "self.generate_request_header(" in inspect.getsource(auth.__call__)
    assert "self.handle_other(" in inspect.getsource(auth.handle_response)
