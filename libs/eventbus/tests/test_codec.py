"""JSON of event data: fast, and exact for integers of any size."""

from __future__ import annotations

from eventbus.codec import from_json, to_json


def test_integers_beyond_64_bits_stay_exact_both_ways() -> None:
    value = {"amount": 2**70, "cents": -(10**19) - 7, "small": 42}

    assert from_json(to_json(value)) == value
    assert from_json(to_json(value).decode()) == value


def test_text_is_compact_utf8() -> None:
    assert to_json({"naam": "Sint-Truiden é", "n": [1, 2]}) == '{"naam":"Sint-Truiden é","n":[1,2]}'.encode()
