"""Input that costs the server is bounded: request bodies (413 before parsing), headers (431),
and the per-filter mask cache, whatever the client sends."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from serving.config import DEFAULT_MAX_BODY_BYTES, ServiceSettings
from serving.filters import MASK_CACHE_SIZE, BusinessFilters, MaskCache


def test_limits_are_settings():
    env = {"CRM_MAX_BODY_BYTES": "65536", "CRM_MAX_HEADER_BYTES": "4096", "CRM_HEADER_TIMEOUT_SECONDS": "2.5"}
    settings = ServiceSettings.from_env(env)
    assert (settings.max_body_bytes, settings.max_header_bytes, settings.header_timeout_seconds) == (
        65536,
        4096,
        2.5,
    )
    assert ServiceSettings.from_env({}).max_body_bytes == DEFAULT_MAX_BODY_BYTES


@pytest.mark.parametrize("path", ["/recommend", "/recommend_batch", "/churn_list"])
def test_a_body_over_the_limit_is_413_before_it_is_parsed(client, path):
    garbage = b"[" * (DEFAULT_MAX_BODY_BYTES + 1)  # not JSON: a 400 would mean it was parsed
    r = client.post(path, content=garbage, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "CRM_MAX_BODY_BYTES" in r.json()["error"]

    def chunks():  # no Content-Length: the limit counts the bytes as they arrive
        for _ in range(5):
            yield b"[" * (DEFAULT_MAX_BODY_BYTES // 4)

    streamed = client.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def test_the_largest_valid_request_fits_the_limit(client):
    ids = ["x" * 200] * 10_000  # the most ids of the longest length the schema allows
    r = client.post("/recommend_batch", json={"customer_ids": ids, "k": 1})
    assert r.status_code == 200, r.text[:300]


def test_headers_over_the_limit_are_431(client):
    r = client.get("/healthz", headers={"X-Big": "a" * 20_000})
    assert r.status_code == 431 and "CRM_MAX_HEADER_BYTES" in r.json()["error"]


def test_the_mask_cache_stays_bounded_whatever_lists_arrive():
    category = np.array(["phone", "tv", "laptop", "wearable", "accessory", "other"] * 50, dtype=object)
    cache = MaskCache(category, np.ones(len(category), dtype=bool))
    orders = itertools.permutations(sorted(set(category)), 3)  # 120 distinct lists, 20 distinct masks
    for n, categories in enumerate(itertools.islice(orders, 4 * MASK_CACHE_SIZE)):
        cache.built(cache.mask(BusinessFilters(categories=list(categories))), lambda allowed: allowed.copy())
        assert max(cache.sizes()) <= MASK_CACHE_SIZE, n
    assert cache.sizes()[0] == MASK_CACHE_SIZE


def test_the_service_mask_cache_stays_bounded(service_env):
    from serving.service import CRMService

    service = CRMService.inner()
    items = pd.read_parquet(service_env.snapshot / "items.parquet")
    categories = sorted(items["category"].unique())
    customer = service_env.known_customers[0]
    lists = itertools.islice(itertools.permutations(categories, 3), 2 * MASK_CACHE_SIZE)
    for allowed in lists:
        assert service.answer_recommend(customer, 3, True, list(allowed)).status_code == 200
    assert max(service._state.retrieval.masks.sizes()) <= MASK_CACHE_SIZE
