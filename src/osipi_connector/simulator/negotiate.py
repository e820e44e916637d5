"""Kerberos over SPNEGO (`WWW-Authenticate: Negotiate`), as IIS offers it in front of PI Web API.

The service key comes from the keytab the Kerberos library finds (KRB5_KTNAME, else /etc/krb5.keytab),
so the simulator is configured exactly like a Linux web server: no option of its own. `gssapi` (installed
with the `[kerberos]` extra) is imported only when Kerberos is chosen.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from osipi_connector.piwebapi.auth import KERBEROS_INSTALL

log = logging.getLogger("osipi_connector.simulator")


class NegotiateError(Exception):
    """The token was refused; the message says why (logged by the server, never sent to the client)."""


class KerberosSetupError(RuntimeError):
    """The server cannot accept Kerberos at all (no gssapi, no keytab): a start-up error."""


class NegotiateAcceptor:
    """Accepts one-leg Kerberos tokens (raw krb5 or SPNEGO-wrapped) and returns the mutual-auth reply."""

    def __init__(self) -> None:
        try:
            import gssapi
        except (ImportError, OSError) as exc:  # not installed, or the system's Kerberos libraries are missing
            raise KerberosSetupError(
                f"--auth kerberos needs the gssapi package ({type(exc).__name__}: {exc}): {KERBEROS_INSTALL}."
            ) from None
        self._gssapi = gssapi
        try:
            self._credentials = gssapi.Credentials(usage="accept")
        except gssapi.exceptions.GSSError as exc:
            raise KerberosSetupError(
                f"--auth kerberos found no usable service key ({_reason(exc)}): set KRB5_KTNAME to a keytab "
                "holding HTTP/<host>@REALM for the host name clients use."
            ) from None

    def accept(self, token_b64: str) -> tuple[str, str | None]:
        """(client principal, base64 reply token or None) for a `Negotiate <token>` header value."""
        try:
            token = base64.b64decode(token_b64, validate=True)
        except (binascii.Error, ValueError):
            raise NegotiateError("the Negotiate token is not base64") from None
        context = self._gssapi.SecurityContext(creds=self._credentials, usage="accept")
        try:
            reply = context.step(token)
        except self._gssapi.exceptions.GSSError as exc:
            raise NegotiateError(_reason(exc)) from None
        if not context.complete:  # Kerberos completes in one leg; NTLM (which would not) is not offered
            raise NegotiateError("the security context needs more than one leg (not Kerberos?)")
        return str(context.initiator_name), base64.b64encode(reply).decode("ascii") if reply else None


def _reason(exc: Any) -> str:
    """The GSS major/minor messages in one line."""
    return " ".join(str(getattr(exc, "gen_message", lambda: exc)()).split())
