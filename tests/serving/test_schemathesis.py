"""Property-based requests from the service's own OpenAPI document: no request gives a 5xx.

Runs against the real server (`live_server`) on loopback, a bounded number of generated requests
per operation (hypothesis, derandomized). /reload is left out: each call reloads both models
(seconds); its behaviour is tested in test_service.py. Schemathesis's pytest plugin does not
work with this pytest version, so the operations' strategies are driven with hypothesis directly.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings


def test_openapi_operations_never_answer_5xx(live_server):
    schema = schemathesis.openapi.from_url(f"{live_server}/docs.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"/recommend", "/recommend_batch", "/churn_score", "/churn_list"} <= {op.path for op in operations}
    calls: dict[str, list[int]] = {}
    for operation in operations:
        if operation.path == "/reload":
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def no_server_error(case) -> None:
            response = case.call(base_url=live_server, timeout=60)
            calls.setdefault(case.operation.path, []).append(response.status_code)
            assert response.status_code < 500, (case.operation.path, case.body, response.text[:300])

        no_server_error()
    main = ("/recommend", "/recommend_batch", "/churn_score", "/churn_list")
    assert all(len(calls[p]) >= 10 for p in main), {p: len(c) for p, c in calls.items()}
    # generated requests exercise both accepted and rejected inputs
    statuses = {code for codes in calls.values() for code in codes}
    assert 200 in statuses and any(400 <= s < 500 for s in statuses)
