"""requests-kerberos with errors that say what to do (imported only when auth_type is kerberos).

Out of the box, a Kerberos failure on the client side (no ticket, unknown service principal) is logged
as a traceback by requests-kerberos and then surfaces as a bare 401 "check the password", and a server
that does not prove its identity raises MutualAuthenticationError. Both become one PIWebAPIError naming
Kerberos, the GSS reason and the fix (kinit / keytab / kerberos_hostname_override / mutual setting).
This module is the one place that hooks into requests-kerberos (checked with requests-kerberos 0.15.0): it
overrides `generate_request_header` and `handle_other`, undocumented methods; tests/client/test_compat.py
checks they are still there and still called.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlparse

import requests
from requests_kerberos import HTTPKerberosAuth
from requests_kerberos.exceptions import KerberosExchangeError, MutualAuthenticationError

from osipi_connector.piwebapi.errors import PIWebAPIError, safe_url

_MINOR = re.compile(r"Minor \(\d+\): (.*?)(?:, Context:.*)?$", re.DOTALL)


class _NoTracebacks(logging.Filter):
    """requests-kerberos logs every GSS failure with a traceback; the PIWebAPIError raised below carries
    the same reason in one line, so only its own plain lines go through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


_FILTER = _NoTracebacks()
for _name in ("requests_kerberos", "requests_kerberos.kerberos_"):
    if _FILTER not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_FILTER)


def gss_reason(error: BaseException) -> str:
    """The GSS minor message ("No Kerberos credentials available ...") or the whole text in one line."""
    text = " ".join(str(error.__cause__ or error).split())
    match = _MINOR.search(text)
    return match.group(1) if match else text


def exchange_error(error: BaseException, url: str, target: str) -> PIWebAPIError:
    reason = gss_reason(error)
    lowered = reason.lower()
    if "no kerberos credentials" in lowered or "credentials cache" in lowered or "no credentials" in lowered:
        advice = (
            "the account running the connector has no Kerberos ticket: run `kinit user@REALM`, or for a "
            "service account `kinit -k -t FILE.keytab principal@REALM` (or set KRB5_CLIENT_KTNAME to that "
            "keytab), and make sure KRB5CCNAME points at the ticket cache it wrote"
        )
    elif "not found in kerberos database" in lowered:
        advice = (
            f"the KDC knows no service principal {target}: PI Web API's SPN is HTTP/<its host name>; when "
            "pi_web_api.url uses an IP address or an alias, set pi_web_api.kerberos_hostname_override to the "
            "host name the SPN is registered for"
        )
    else:
        advice = "check krb5.conf (KRB5_CONFIG: realm and KDC), the ticket (`klist`) and the clocks"
    return PIWebAPIError(f"Kerberos authentication to {safe_url(url)} failed ({reason}): {advice}.", url=safe_url(url))


class ExplainedKerberosAuth(HTTPKerberosAuth):
    """HTTPKerberosAuth whose failures are PIWebAPIErrors that say what to do."""

    def generate_request_header(self, response: Any, host: str, is_preemptive: bool = False) -> str:
        try:
            return super().generate_request_header(response, host, is_preemptive)
        except KerberosExchangeError as exc:
            url = response.url if response is not None else f"http://{host}"
            if response is not None:
                response.close()
            target = f"{self.service}/{self.hostname_override or host}"
            raise exchange_error(exc, url, target) from None

    def handle_other(self, response: requests.Response) -> requests.Response:
        try:
            return super().handle_other(response)
        except MutualAuthenticationError:
            response.close()
            host = urlparse(response.url).hostname
            raise PIWebAPIError(
                f"Kerberos mutual authentication failed: the answer of {safe_url(response.url)} "
                f"({response.status_code}) carries no valid proof that it comes from {self.service}/"
                f"{self.hostname_override or host}, and pi_web_api.kerberos_mutual_authentication is required. "
                "Check that the URL reaches PI Web API itself (not a proxy answering for it); set the option "
                "to optional only if such a proxy is expected.",
                status=response.status_code,
                url=safe_url(response.url),
            ) from None
