"""The BentoML service: recommendations and churn scores for marketing and campaign tools.

One class, :class:`CRMService`, whose methods are the endpoints. At start it loads the
``champion`` models and the online snapshot into one immutable :class:`~serving.state.LoadedState`.
A reload builds a new state beside the old one and swaps a single reference, so a request sees
either the old or the new models, never a mix; a failed reload leaves the current state serving
and is reported.

Latency notes (see docs/benchmarks.md, Serving): the hot endpoints are ``async`` (no thread hop), return
ready JSON bytes (BentoML would otherwise rebuild the output JSON schema on every response), what
depends only on the snapshot is computed once per loaded state, and BentoML's metrics, access log
and tracing are off by default.

Run it with ``crm serve`` (or ``bentoml serve serving.service:CRMService`` from the repository).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
from typing import Any

import bentoml
from starlette.responses import Response

from features.errors import UserError
from features.vocab import ChurnSort
from serving.config import ServiceSettings
from serving.http import DropValidationTracebacks, Guard, error_response, json_response
from serving.registry import resolve_model_uri
from serving.schemas import (
    Categories,
    ChurnListResponse,
    ChurnScoreRequest,
    ChurnScoreResponse,
    CustomerIds,
    K,
    Limit,
    ModelInfo,
    Owns,
    Probability,
    RecommendBatchResponse,
    RecommendRequest,
    RecommendResponse,
    Regions,
    ReloadResponse,
    Stages,
    Tiers,
)
from serving.state import LoadedState, load_state

logger = logging.getLogger("crm.serving")


@bentoml.service(
    name="crm",
    workers=1,
    threads=4,
    traffic={"timeout": 60},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    tracing={"sample_rate": 0.0, "excluded_urls": [".*"]},
)
class CRMService:
    """Recommendations (`/recommend`, `/recommend_batch`) and churn (`/churn_score`, `/churn_list`)."""

    def __init__(self) -> None:
        self.settings = ServiceSettings.from_env()
        logging.getLogger("bentoml._internal.server.http_app").addFilter(DropValidationTracebacks())
        self._state: LoadedState | None = None
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self.reloads = 0
        self.last_reload_error: str | None = None
        self.reload()
        if self.settings.reload_poll_seconds > 0:
            threading.Thread(target=self._poll_loop, name="crm-alias-poll", daemon=True).start()

    # -- readiness and state ---------------------------------------------------------------------

    def __is_ready__(self) -> bool:
        """BentoML's /readyz: ready only once models and the snapshot are loaded."""
        return self._state is not None

    def _info(self) -> dict[str, Any]:
        s = self._state
        return {
            "ready": s is not None,
            "churn_model": s.churn_uri if s else None,
            "churn_version": s.churn_version if s else None,
            "recommender_model": s.recommender_uri if s else None,
            "recommender_version": s.recommender_version if s else None,
            "snapshot": str(s.snapshot.path) if s else None,
            "snapshot_as_of": s.snapshot.as_of if s else None,
            "loaded_at": s.loaded_at if s else None,
            "reloads": self.reloads,
            "last_reload_error": self.last_reload_error,
        }

    def reload(self, only_if_changed: bool = False) -> bool:
        """Load a new state and swap it in; on failure keep the current one and record why."""
        with self._reload_lock:
            try:
                if only_if_changed and self._state is not None and self._current_key() == self._state.key:
                    return False
                state = load_state(self.settings)
            except Exception as exc:  # any failure behind us must leave the service serving
                self.last_reload_error = f"{type(exc).__name__}: {exc}"
                logger.error(
                    "model reload failed, still serving the current models: %s", self.last_reload_error
                )
                return False
            gc.collect()
            gc.freeze()  # the loaded arrays and frames leave the GC's generations: shorter pauses
            self._state = state  # the one atomic swap
            self.reloads += 1
            self.last_reload_error = None
            logger.info("serving churn %s, recommender %s", state.churn_version, state.recommender_version)
            return True

    def _current_key(self) -> tuple[str, str, str]:
        """The versions the aliases point at now, and the snapshot's as-of on disk."""
        churn_version = resolve_model_uri(self.settings.churn_model_uri, self.settings.tracking_uri).version
        rec_version = resolve_model_uri(
            self.settings.recommender_model_uri, self.settings.tracking_uri
        ).version
        manifest = json.loads((self.settings.online_snapshot / "manifest.json").read_text())
        return (churn_version, rec_version, manifest["as_of"])

    def poll_once(self) -> bool:
        """Reload when an alias moved or the snapshot changed; True when a new state was swapped in."""
        if self.settings.model_source == "bento":
            return False
        return self.reload(only_if_changed=True)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.reload_poll_seconds):
            self.poll_once()

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()

    def _ready_state(self) -> LoadedState | Response:
        state = self._state
        if state is None:
            reason = self.last_reload_error or "still loading"
            return error_response(503, f"models are not loaded ({reason}); see /info and /reload")
        return state

    # -- recommendations ------------------------------------------------------------------------

    @bentoml.api(input_spec=RecommendRequest, output_spec=RecommendResponse)
    async def recommend(
        self,
        customer_id: str,
        k: int = 10,
        exclude_owned: bool = True,
        categories: list[str] | None = None,
    ) -> Response:
        """Top-k cross-sell items for one customer; unknown customers get popular items (fallback)."""
        return self.answer_recommend(customer_id, k, exclude_owned, categories)

    def answer_recommend(
        self, customer_id: str, k: int = 10, exclude_owned: bool = True, categories: list[str] | None = None
    ) -> Response:
        """The body of /recommend (shared by the typed endpoint and the fast lane)."""
        state = self._ready_state()
        if isinstance(state, Response):
            return state
        answer = state.recommend_one(customer_id, k, exclude_owned, categories)
        answer["model_version"] = state.recommender_version
        return json_response(answer)

    @bentoml.api(output_spec=RecommendBatchResponse)
    def recommend_batch(
        self,
        customer_ids: CustomerIds,
        k: K = 10,
        exclude_owned: bool = True,
        categories: Categories | None = None,
    ) -> Response:
        """Top-k for up to 10,000 customers, one list each (runs in a worker thread)."""
        state = self._ready_state()
        if isinstance(state, Response):
            return state
        results = state.recommend(list(customer_ids), k, exclude_owned, categories)
        return json_response({"results": results, "model_version": state.recommender_version})

    # -- churn ------------------------------------------------------------------------------------

    @bentoml.api(input_spec=ChurnScoreRequest, output_spec=ChurnScoreResponse)
    async def churn_score(self, customer_ids: list[str]) -> Response:
        """Churn probability, risk band and reasons per customer (precomputed per snapshot)."""
        return self.answer_churn_score(customer_ids)

    def answer_churn_score(self, customer_ids: list[str]) -> Response:
        """The body of /churn_score (shared by the typed endpoint and the fast lane)."""
        state = self._ready_state()
        if isinstance(state, Response):
            return state
        return json_response(
            {"scores": state.churn_scores(customer_ids), "model_version": state.churn_version}
        )

    @bentoml.api(output_spec=ChurnListResponse)
    def churn_list(
        self,
        min_probability: Probability = 0.0,
        tiers: Tiers | None = None,
        regions: Regions | None = None,
        owns: Owns | None = None,
        limit: Limit = 100,
        sort: ChurnSort = "expected_loss",
        stages: Stages | None = None,
    ) -> Response:
        """Customers of a segment ranked by revenue at risk (or probability), with reasons, action and
        lifecycle stage; lapsed customers only when ``stages`` asks for them."""
        state = self._ready_state()
        if isinstance(state, Response):
            return state
        try:
            customers = state.churn_list(min_probability, tiers, regions, owns, limit, sort, stages)
        except UserError as exc:
            return error_response(400, str(exc), "stages" if "lifecycle" in str(exc) else "owns")
        return json_response(
            {
                "customers": customers,
                "model_version": state.churn_version,
                "snapshot_as_of": state.snapshot.as_of,
            }
        )

    # -- operations -------------------------------------------------------------------------------

    @bentoml.api(output_spec=ModelInfo)
    async def info(self) -> Response:
        """What is loaded: model URIs and versions, the snapshot, the last reload error."""
        return json_response(self._info())

    @bentoml.api(route="/reload", output_spec=ReloadResponse)
    def reload_models(self) -> Response:
        """Reload the champions and the snapshot now; on failure the current models keep serving (503)."""
        ok = self.reload()
        return json_response({"reloaded": ok, **self._info()}, 200 if ok else 503)


CRMService.add_asgi_middleware(Guard)
