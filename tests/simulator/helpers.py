"""Small helpers the simulator tests share."""

from __future__ import annotations

from typing import Any

import requests


def get_json(http: requests.Session, url: str, expect: int = 200, **params: Any) -> Any:
    response = http.get(url, params=params)
    assert response.status_code == expect, response.text
    return response.json()


def points_url(http: requests.Session, base: str) -> str:
    return get_json(http, f"{base}/dataservers")["Items"][0]["Links"]["Points"]


def all_points(http: requests.Session, base: str) -> list[dict]:
    return get_json(http, points_url(http, base), maxCount=100_000)["Items"]


def first_of_type(http: requests.Session, base: str, point_type: str) -> dict:
    return next(p for p in all_points(http, base) if p["PointType"] == point_type)
