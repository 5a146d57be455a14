"""End to end over HTTP: `crm serve` as a real process on a free loopback port."""

from __future__ import annotations

import httpx


def test_served_over_http(live_server, serving_env):
    with httpx.Client(base_url=live_server, timeout=30) as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200

        customer = serving_env.known_customers[0]
        rec = http.post("/recommend", json={"customer_id": customer, "k": 5})
        assert rec.status_code == 200 and rec.headers["content-type"].startswith("application/json")
        body = rec.json()
        assert body["customer_id"] == customer and len(body["items"]) == 5 and body["fallback"] is False

        unknown = http.post("/recommend", json={"customer_id": "never-seen", "k": 3}).json()
        assert unknown["fallback"] is True and len(unknown["items"]) == 3

        batch = http.post("/recommend_batch", json={"customer_ids": [customer, "never-seen"], "k": 5}).json()
        ids = [i["item_id"] for i in batch["results"][0]["items"]]
        assert ids == [i["item_id"] for i in body["items"]]

        scores = http.post("/churn_score", json={"customer_ids": [customer]}).json()["scores"]
        assert scores[0]["known"] is True and 0 <= scores[0]["churn_probability"] <= 1

        ranked = http.post("/churn_list", json={"limit": 5}).json()["customers"]
        assert [r["rank"] for r in ranked] == [1, 2, 3, 4, 5]

        bad = http.post("/recommend", json={"customer_id": customer, "k": 1000})
        assert bad.status_code == 400 and bad.json()["field"] == "k"
        garbage = http.post("/churn_score", content=b"{{{", headers={"content-type": "application/json"})
        assert garbage.status_code == 400

        info = http.post("/info").json()
        assert info["ready"] and info["recommender_version"] == body["model_version"]
