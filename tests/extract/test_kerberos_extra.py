"""`auth_type: kerberos` on a machine without the [kerberos] extra: `osipi-connector run` stops with one line
that says exactly what to install (libkrb5-dev first: gssapi builds from source), not a traceback. Run as a
user runs it, in a subprocess where the Kerberos packages cannot be imported (as on a `make demo` install)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# The console script's entry point, behind an import blocker for everything the extra installs.
WITHOUT_EXTRA = textwrap.dedent(
    """
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {"requests_kerberos", "gssapi", "spnego", "krb5"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())
    from osipi_connector.cli import main

    sys.exit(main())
    """
)


def test_run_without_the_kerberos_extra_says_what_to_install(tmp_path):
    config = tmp_path / "connector.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            pi_web_api:
              url: "http://127.0.0.1:9/piwebapi"
              auth_type: kerberos
            extraction:
              name_filter: "*"
              mode: full
              start_date: "2025-03-01T10:00:00Z"
              end_date: "2025-03-01T12:00:00Z"
            local:
              lakehouse_root: "{tmp_path / "lake"}"
            """
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "osipi-connector: error: run failed: PIWebAPIError: pi_web_api.auth_type is kerberos but requests-kerberos "
        "is not installed: on Debian/Ubuntu first `sudo apt-get install libkrb5-dev` (gssapi builds from source "
        "against it; RHEL: krb5-devel), then `pip install 'osipi-connector[kerberos]'`."
    )
