from iot_connector.wording import plural


def test_plural_says_one_thing_and_many_things():
    assert plural(1, "request") == "1 request"
    assert [plural(n, "tag") for n in (0, 2)] == ["0 tags", "2 tags"]
    assert plural(3, "entry", "entries") == "3 entries"
