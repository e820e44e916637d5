"""The pure helpers behind write-only secrets and the audit log."""

from __future__ import annotations

from iot_connector.web.masking import MASK, changes, masked, unmask
from iot_connector.web.runtime import LogBuffer


def test_secrets_are_masked_and_restored_only_where_the_browser_sent_the_mask():
    stored = {"sink": {"client_secret": "s1", "client_id": "id"}, "sources": [{"name": "a", "password": "p"}]}
    shown = masked(stored)
    assert shown == {"sink": {"client_secret": MASK, "client_id": "id"}, "sources": [{"name": "a", "password": MASK}]}
    back = unmask(shown | {"sink": {"client_secret": "new", "client_id": "id"}}, stored)
    assert back == {"sink": {"client_secret": "new", "client_id": "id"}, "sources": [{"name": "a", "password": "p"}]}


def test_audit_changes_name_each_key_compare_sources_by_name_and_redact_secrets():
    old = {"pipeline": {"drop_policy": "block"}, "sources": [{"name": "a", "url": "u1", "password": "p"}]}
    new = {
        "pipeline": {"drop_policy": "oldest"},
        "sources": [{"name": "b", "url": "u"}, {"name": "a", "url": "u2", "password": "q"}],
    }
    diff = changes(old, new)
    assert diff == {
        "pipeline.drop_policy": {"old": "block", "new": "oldest"},
        "sources.a.password": "<secret changed>",
        "sources.a.url": {"old": "u1", "new": "u2"},
        "sources.b": {"old": None, "new": {"name": "b", "url": "u"}},
    }


def test_log_buffer_filters_by_level_and_text_after_a_sequence_number():
    import logging

    buffer = LogBuffer(size=3)
    logger = logging.getLogger("gui-test-buffer")
    logger.addHandler(buffer)
    logger.setLevel(logging.DEBUG)
    try:
        for level, text in (
            (logging.DEBUG, "d one"),
            (logging.INFO, "i two"),
            (logging.ERROR, "e three"),
            (logging.INFO, "i four"),
        ):
            logger.log(level, text)
    finally:
        logger.removeHandler(buffer)
    assert [line["msg"] for line in buffer.query()] == ["i two", "e three", "i four"]  # bounded to 3
    assert [line["msg"] for line in buffer.query(level="WARNING")] == ["e three"]
    assert [line["msg"] for line in buffer.query(search="FOUR")] == ["i four"]
    assert [line["msg"] for line in buffer.query(after=3)] == ["i four"]


def test_first_run_generates_an_admin_password_printed_once(tmp_path, monkeypatch, capsys):
    from iot_connector.web.auth import ADMIN_PASSWORD_ENV, Users

    monkeypatch.delenv(ADMIN_PASSWORD_ENV, raising=False)
    users = Users(tmp_path)
    users.ensure_admin()
    printed = capsys.readouterr().err
    password = printed.split("password: ")[1].split()[0]
    assert len(password) >= 16
    assert users.verify("admin", password)
    assert not users.verify("admin", password + "x")
    assert not users.verify("root", password)
    users.ensure_admin()  # second start: nothing new, nothing printed
    assert capsys.readouterr().err == ""
    assert users.verify("admin", password)


def test_a_masked_secret_is_kept_only_for_its_own_destination():
    import pytest

    from iot_connector.config import ConfigError

    stored = {
        "name": "a",
        "type": "opcua",
        "endpoint": "opc.tcp://plc:4840",
        "password": "p",
        "trusted_server_certs": [],
    }
    shown = masked(stored)
    # empty values in any spelling are the same destination
    assert unmask(shown | {"trusted_server_certs": None, "name": "b"}, stored, "sources.b")["password"] == "p"
    with pytest.raises(ConfigError) as moved:
        unmask(shown | {"endpoint": "opc.tcp://evil:4840"}, stored, "sources.a")
    assert moved.value.problems == [
        "sources.a.password: endpoint changed, so the stored password is not sent there; enter the password again"
    ]
    assert unmask(shown | {"endpoint": "opc.tcp://evil:4840", "password": "new"}, stored)["password"] == "new"
    proxy = {"https_proxy": "http://u:pw@proxy:3128"}
    assert masked(proxy) == {"https_proxy": f"http://u:{MASK}@proxy:3128"}
    assert unmask(masked(proxy), proxy) == proxy
    with pytest.raises(ConfigError, match="the address changed"):
        unmask({"https_proxy": f"http://u:{MASK}@evil:3128"}, proxy, "proxy")
    assert changes(proxy, {"https_proxy": "http://u:other@proxy:3128"}) == {"https_proxy": "<secret changed>"}


def test_the_login_backoff_doubles_caps_and_keeps_devices_apart(monkeypatch):
    from iot_connector.web import auth

    now = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    limiter = auth.LoginLimiter(free=2, base_s=1.0, max_s=60.0)
    key = limiter.key("Admin", "10.0.0.1")
    assert key == limiter.key("admin", "10.0.0.1")  # user names compare case-insensitively
    waits = []
    for _ in range(12):
        wait, _first = limiter.retry_after(key)
        now[0] += wait
        limiter.begin(key)
        waits.append(wait)
    assert waits == [0, 0, 2, 3, 5, 9, 17, 33, 61, 61, 61, 61]  # 1, 2, 4 ... s, capped at 60 (+1 rounding up)
    assert limiter.retry_after(key) == (61, True)
    assert limiter.retry_after(key) == (61, False)  # audited once per wait
    for _ in range(100_000):  # a year of guessing cannot overflow the delay
        limiter.begin(key)
    assert limiter.retry_after(key)[0] == 61
    device = limiter.device_of(limiter.device_token("admin"), "admin")
    assert device is not None
    assert limiter.device_of(limiter.device_token("admin"), "other") is None  # signed for its user only
    assert limiter.device_of("forged.cookie", "admin") is None
    assert limiter.retry_after(limiter.key("admin", "10.0.0.1", device)) == (0, False)
    limiter.succeeded(key)
    assert limiter.retry_after(key) == (0, False)
