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

Start-up and faults: the models load on a thread of their own, so /healthz answers at once and
/readyz says why it is not ready yet (still loading, the registry unreachable, an alias missing,
files unreadable); the first load is retried with backoff, and MLflow's own HTTP retries are kept
short (:func:`serving.registry.bounded_mlflow_http`). /reload runs on that thread too and answers
within ``CRM_RELOAD_TIMEOUT_SECONDS``; the poll backs off from a version that failed to load. A
service that starts while a champion's files are unreadable serves the versions it served last
(:meth:`CRMService._load` says how). A worker started by the ``bentoml serve`` supervisor stops
when the supervisor dies, even by ``kill -9`` (:func:`die_with_parent`).

Run it with ``crm serve`` (or ``bentoml serve`` from the repository root): it loads the MLflow
champions. The class also declares the models a built Bento carries (BentoML model references,
see :mod:`serving.bento`): ``crm serve --import-models``, ``bentoml build`` and ``bentoml serve
crm:latest`` serve the versions packed at build time, with neither MLflow nor any variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bentoml
from bentoml._internal.context import server_context
from starlette.exceptions import HTTPException
from starlette.responses import Response

from features.errors import UserError
from features.vocab import ChurnSort, Offer
from serving import bento
from serving.config import ServiceSettings
from serving.events import EventFeed
from serving.http import DropValidationTracebacks, Guard, bound_http_parser, error_response, json_response
from serving.registry import ArtifactUnreadable, ModelNotFound, resolve_model_uri
from serving.schemas import (
    Categories,
    ChurnListRequest,
    ChurnListResponse,
    ChurnScoreRequest,
    ChurnScoreResponse,
    CustomerIds,
    EventsRequest,
    EventsResponse,
    K,
    Limit,
    ModelInfo,
    NoParameters,
    Owns,
    PostedEvent,
    Probability,
    RecommendBatchRequest,
    RecommendBatchResponse,
    RecommendRequest,
    RecommendResponse,
    Regions,
    ReloadResponse,
    RetentionPlanRequest,
    RetentionPlanResponse,
    Stages,
    Tiers,
    WinbackListRequest,
    WinbackListResponse,
)

if TYPE_CHECKING:  # serving.state imports MLflow (seconds): the load thread imports it, after start-up
    from serving.state import LoadedState

logger = logging.getLogger("crm.serving")

START_ATTEMPTS = 6  # loads tried at start-up before waiting for /reload or the poll
START_BACKOFF_SECONDS = 1.0  # the wait after the first failed attempt, doubled after each
MAX_POLL_BACKOFF_SECONDS = 600.0  # the longest the poll waits to retry a version that failed
PARENT_GRACE_SECONDS = 10.0  # after the supervisor died: the graceful shutdown's time to finish
PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies


def die_with_parent(grace_seconds: float = PARENT_GRACE_SECONDS) -> None:
    """Stop this worker when the supervisor that started it dies, even by ``kill -9``.

    On Linux the kernel sends SIGTERM at the parent's death (``prctl(PR_SET_PDEATHSIG)``), which
    uvicorn turns into a graceful shutdown; a watchdog thread notices the change of parent on any
    system, sends the same SIGTERM and exits the process if the shutdown still runs after
    ``grace_seconds``. Without this, an orphaned worker kept the port and answered /readyz.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    watchdog = threading.Thread(
        target=_watch_parent, args=(parent, grace_seconds), name="crm-parent-watch", daemon=True
    )
    watchdog.start()


def _watch_parent(parent: int, grace_seconds: float) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    logger.error("the supervisor (pid %d) is gone: this worker stops", parent)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_seconds)
    os._exit(1)


def _optional_version(uri: str | None, tracking_uri: str | None) -> str | None:
    """The version an optional model's URI points at now; None when the registry has none."""
    if not uri:
        return None
    try:
        return resolve_model_uri(uri, tracking_uri).version
    except ModelNotFound:
        return None


def _read_record(path: Path) -> dict[str, str]:
    """The served record (see :meth:`CRMService._load`); empty when missing or unreadable."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}


def _freeze_after_full_collections(phase: str, info: dict[str, Any]) -> None:
    """A gc callback: freeze what survives each full collection.

    Right after a full collection every tracked object is reachable, so freezing them leaks no
    garbage, and the next full collection scans only the objects made since. Without it each full
    collection scanned every record of the live overlay and every refreshed churn score again
    (hundreds of thousands of objects after an ingest burst, the event loop stopped meanwhile: the
    tail of /recommend during ingest, docs/benchmarks.md). A frozen object is still freed when its
    last reference goes (the overlay's records and scores hold no cycles); a cycle that forms among
    frozen objects waits for the next load, which unfreezes and collects everything
    (:meth:`CRMService._swap`). Only a server's workers install it: a notebook or a test process
    holds cycles of its own.
    """
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


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

    # BentoML model references: what `bentoml build` packs (its bento.yaml records each at the
    # newest version in the model store then). Only declared: in a Bento the service loads them
    # by those pinned tags (serving.bento), elsewhere it loads from MLflow.
    churn_model = bento.reference(bento.CHURN)
    recommender_model = bento.reference(bento.RECOMMENDER)
    online_snapshot_model = bento.reference(bento.SNAPSHOT)

    def __init__(self) -> None:
        built = CRMService.bento  # set by BentoML when it serves a built Bento (tag, folder or container)
        if built is not None:
            bento.pin(built)
        self.settings = ServiceSettings.from_env(in_bento=built is not None)
        logging.getLogger("bentoml._internal.server.http_app").addFilter(DropValidationTracebacks())
        supervised = server_context.worker_index is not None  # a worker process of `bentoml serve`
        if supervised:
            die_with_parent()
            if _freeze_after_full_collections not in gc.callbacks:  # a server's worker, not a notebook
                gc.callbacks.append(_freeze_after_full_collections)
        self._state: LoadedState | None = None
        self._reload_lock = threading.Lock()  # one load at a time: start-up, /reload and the poll
        self._stop = threading.Event()
        self._pending_lock = threading.Lock()
        self._pending: Future[bool] | None = None  # the load running off the request threads
        self.reloads = 0
        self.last_reload_error: str | None = None
        self._failed_key: tuple[str | None, ...] | None = None  # what the poll failed to load, and
        self._failures = 0  # how often in a row: it waits interval x 2^(failures - 1) to retry
        self._retry_at = 0.0
        self.clock: Callable[[], float] = time.monotonic  # what the backoff measures (tests replace it)
        self._started = threading.Event()  # the start-up attempts have ended
        self.feed = EventFeed.from_env(lambda: self._state)  # POST /events, and the log applied
        first_attempt = threading.Event()
        start_up = threading.Thread(target=self._start_up, args=(first_attempt,), name="crm-start-up")
        start_up.daemon = True
        start_up.start()
        if not supervised:
            first_attempt.wait()  # in process (tests, notebooks): the first attempt has ended
        if self.settings.reload_poll_seconds > 0:
            threading.Thread(target=self._poll_loop, name="crm-alias-poll", daemon=True).start()
        self.feed.start()

    # -- readiness and state ---------------------------------------------------------------------

    async def __is_ready__(self) -> bool:
        """BentoML's /readyz: ready once models and the snapshot are loaded; until then a 503 whose
        body says why (still loading, the registry unreachable, an alias missing, files unreadable)."""
        if self._state is not None:
            return True
        raise HTTPException(503, detail=f"Models are not loaded: {self.last_reload_error or 'still loading'}")

    def _info(self) -> dict[str, Any]:
        s = self._state
        return {
            "ready": s is not None,
            "churn_model": s.churn_uri if s else None,
            "churn_version": s.churn_version if s else None,
            "recommender_model": s.recommender_uri if s else None,
            "recommender_version": s.recommender_version if s else None,
            # None: no value champion, so customer values are the past-year revenue
            "value_model": s.value_uri if s else None,
            "value_version": s.value_version if s else None,
            # None: no uplift champion, so /retention_plan answers 503
            "uplift_model": s.uplift_uri if s else None,
            "uplift_version": s.uplift_version if s else None,
            "snapshot": str(s.snapshot.path) if s else None,
            "snapshot_as_of": s.snapshot.as_of if s else None,
            "loaded_at": s.loaded_at if s else None,
            # False until the default-filter lists are precomputed (those requests are computed meanwhile)
            "lists_precomputed": s.top is not None if s else False,
            "reloads": self.reloads,
            "last_reload_error": self.last_reload_error,
            "events": self.feed.info(),
        }

    def _start_up(self, first_attempt: threading.Event) -> None:
        """The first load, retried with backoff (``START_ATTEMPTS`` tries, the wait doubling from
        ``START_BACKOFF_SECONDS``); a /reload meanwhile joins the attempt running or makes one."""
        delay = START_BACKOFF_SECONDS
        try:
            for attempt in range(1, START_ATTEMPTS + 1):
                loaded = self._in_background(self.reload).result()
                first_attempt.set()
                if loaded or self._state is not None:
                    return
                if attempt == START_ATTEMPTS or self._stop.wait(delay):
                    break
                delay *= 2
            if not self._stop.is_set():
                logger.error("no models after %d attempts; POST /reload to try again", START_ATTEMPTS)
        finally:
            first_attempt.set()
            self._started.set()

    def reload(self, only_if_changed: bool = False) -> bool:
        """Load a new state and swap it in; on failure keep the current one and record why.

        ``only_if_changed`` (the poll): nothing is loaded while the aliases and the snapshot are
        where the served state is, and a target that failed to load is retried with backoff.
        """
        with self._reload_lock:
            key = None
            try:
                if only_if_changed:
                    if self._failures and self._failed_key is None and self.clock() < self._retry_at:
                        return False  # the last failure named no version (the registry's?): back off
                    key = self._current_key()
                    if self._state is not None and key == self._state.key:
                        self._forget_failures()  # back to what is served: no error is current
                        return False
                    if self._failures and key == self._failed_key and self.clock() < self._retry_at:
                        return False
                state, broken = self._load()
            except Exception as exc:  # any failure behind us must leave the service serving
                self._record_failure(key, f"{type(exc).__name__}: {exc}")
                return False
            self._swap(state)
            if broken is not None:
                self._record_failure(
                    key,
                    f"{type(broken).__name__}: {broken} Serving the last served versions instead"
                    f" ({state.churn_uri}, {state.recommender_uri}).",
                )
            return True

    def _load(self) -> tuple[LoadedState, ArtifactUnreadable | None]:
        """The champions' state; or, when their files are unreadable and nothing is served yet,
        the versions this service served last, with the champion's error.

        How the fallback works: after each swap the service records, for each configured URI, the
        pinned version it now serves (``{"models:/churn@champion": "models:/churn/3", ...}``) in
        ``CRM_SERVED_RECORD`` (default ``served.json`` in the store folder, written only where that
        folder exists). A service that starts, or a worker that restarts, while a champion's files
        cannot be loaded serves the recorded versions instead: ready, with the champion's error in
        /info. The poll and /reload keep trying the champion; a failed reload of a running service
        simply keeps its current state.
        """
        from serving.state import load_state

        try:
            return load_state(self.settings), None
        except ArtifactUnreadable as broken:
            fallback = self._last_served_settings() if self._state is None else None
            if fallback is None:
                raise
            logger.error("%s; falling back to the last served versions", broken)
            try:
                return load_state(fallback), broken
            except Exception:
                raise broken from None

    def _swap(self, state: LoadedState) -> None:
        gc.unfreeze()  # everything collected once per load, what earlier freezes held included
        gc.collect()
        gc.freeze()  # the loaded arrays and frames leave the GC's generations: shorter pauses
        self._state = state  # the one atomic swap
        self.reloads += 1
        self._forget_failures()
        self._remember_served(state)
        logger.info("serving churn %s, recommender %s", state.churn_version, state.recommender_version)
        if self.settings.precompute_recommendations:
            threading.Thread(
                target=self._precompute, args=(state,), name="crm-precompute", daemon=True
            ).start()

    def _precompute(self, state: LoadedState) -> None:
        """The default-filter lists of a state that already serves (until they are in, each such
        /recommend computes its list, with the same answer)."""
        started = time.monotonic()
        try:
            top = state.precompute()
        except Exception:  # the computed path keeps answering
            logger.exception("precomputing the recommendation lists failed; they are computed per request")
            return
        logger.info(
            "precomputed the recommendation lists of %d customers in %.1f s",
            len(top.row),
            time.monotonic() - started,
        )

    def _record_failure(self, key: tuple[str | None, ...] | None, error: str) -> None:
        self._failures = self._failures + 1 if key == self._failed_key else 1
        self._failed_key = key
        interval = self.settings.reload_poll_seconds
        backoff = min(interval * 2 ** (self._failures - 1), max(interval, MAX_POLL_BACKOFF_SECONDS))
        self._retry_at = self.clock() + backoff
        self.last_reload_error = error
        if self._state is not None:
            logger.error("model reload failed, still serving the current models: %s", error)
            return
        s = self.settings  # nothing is loaded: say what was looked for, and where
        looked_for = (
            bento.where()
            if s.model_source == "bento"
            else f"{s.churn_model_uri} and {s.recommender_model_uri} in the MLflow registry"
            f" {s.tracking_uri}, the online snapshot in {s.online_snapshot}"
        )
        logger.error("no models loaded, nothing is served: %s (looked for %s)", error, looked_for)

    def _forget_failures(self) -> None:
        self._failed_key, self._failures, self.last_reload_error = None, 0, None

    def _remember_served(self, state: LoadedState) -> None:
        path = self.settings.served_record
        if path is None or self.settings.model_source != "mlflow" or not path.parent.is_dir():
            return
        s = self.settings
        served = {
            s.churn_model_uri: state.churn_uri,
            s.recommender_model_uri: state.recommender_uri,
            s.value_model_uri: state.value_uri or "",  # "": none served, so none on a fallback
        }
        try:
            record = {**_read_record(path), **served}
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_text(json.dumps(record, indent=2) + "\n")
            os.replace(partial, path)  # readers see the old record or the new one
        except OSError as exc:
            logger.warning("could not record the served versions in %s: %s", path, exc)

    def _last_served_settings(self) -> ServiceSettings | None:
        path = self.settings.served_record
        record = _read_record(path) if path is not None else {}
        fields = ("churn_model_uri", "recommender_model_uri", "value_model_uri")
        update = {f: record[getattr(self.settings, f)] for f in fields if getattr(self.settings, f) in record}
        if not update or all(update[f] == getattr(self.settings, f) for f in update):
            return None
        return self.settings.model_copy(update=update)

    def _current_key(self) -> tuple[str | None, ...]:
        """The versions the aliases point at now (None for an optional model the registry lacks),
        and the snapshot's as-of on disk (the MLflow source; a Bento's models never move)."""
        s = self.settings
        churn_version = resolve_model_uri(s.churn_model_uri, s.tracking_uri).version
        rec_version = resolve_model_uri(s.recommender_model_uri, s.tracking_uri).version
        optional = [_optional_version(uri, s.tracking_uri) for uri in (s.value_model_uri, s.uplift_model_uri)]
        manifest = json.loads((s.online_snapshot / "manifest.json").read_text())
        return (churn_version, rec_version, *optional, manifest["as_of"])

    def poll_once(self) -> bool:
        """Reload when an alias moved or the snapshot changed; True when a new state was swapped in.
        Never with the Bento's models: they are pinned."""
        if self.settings.model_source == "bento":
            return False
        return self.reload(only_if_changed=True)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.reload_poll_seconds):
            if self._started.is_set() and (self._pending is None or self._pending.done()):
                self.poll_once()  # not beside the start-up attempts or a /reload

    def _in_background(self, load: Callable[[], bool]) -> Future[bool]:
        """Run ``load`` on a thread of its own; while one runs, callers share its future."""
        with self._pending_lock:
            if self._pending is not None and not self._pending.done():
                return self._pending
            future: Future[bool] = Future()

            def run() -> None:
                future.set_running_or_notify_cancel()
                try:
                    future.set_result(load())
                except BaseException as exc:  # reported to whoever awaits the future
                    future.set_exception(exc)

            threading.Thread(target=run, name="crm-reload", daemon=True).start()
            self._pending = future
            return future

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        self._stop.set()
        self.feed.stop()

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
        exclude_items: list[str] | None = None,
    ) -> Response:
        """Top-k cross-sell items for one customer; unknown customers get popular items (fallback)."""
        return self.answer_recommend(customer_id, k, exclude_owned, categories, exclude_items)

    def answer_recommend(
        self,
        customer_id: str,
        k: int = 10,
        exclude_owned: bool = True,
        categories: list[str] | None = None,
        exclude_items: list[str] | None = None,
    ) -> Response:
        """The body of /recommend (shared by the typed endpoint and the fast lane)."""
        state = self._ready_state()
        if isinstance(state, Response):
            return state
        try:
            answer = state.recommend_one(
                customer_id, k, exclude_owned, categories, self.feed.overlay, exclude_items
            )
        except UserError as exc:  # an unknown category
            return error_response(400, str(exc), "categories")
        answer["model_version"] = state.recommender_version
        return json_response(answer)

    @bentoml.api(input_spec=RecommendBatchRequest, output_spec=RecommendBatchResponse)
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
        try:
            results = state.recommend(list(customer_ids), k, exclude_owned, categories, self.feed.overlay)
        except UserError as exc:  # an unknown category
            return error_response(400, str(exc), "categories")
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
            {"scores": self.feed.churn_scores(state, customer_ids), "model_version": state.churn_version}
        )

    @bentoml.api(input_spec=ChurnListRequest, output_spec=ChurnListResponse)
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

    @bentoml.api(input_spec=WinbackListRequest, output_spec=WinbackListResponse)
    def winback_list(
        self,
        min_probability: Probability = 0.0,
        tiers: Tiers | None = None,
        regions: Regions | None = None,
        owns: Owns | None = None,
        limit: Limit = 100,
    ) -> Response:
        """Lapsed customers of a segment ranked by the chance of coming back x forecast value, with
        reasons and action; needs a value model (503 without one)."""
        state = self._ready_state()
        if isinstance(state, Response):
            return state
        if state.value_version is None:
            return error_response(
                503,
                "The win-back list needs a value model: `crm train value --register`, `crm promote value`.",
            )
        try:
            customers = state.winback_list(min_probability, tiers, regions, owns, limit)
        except UserError as exc:
            return error_response(400, str(exc), "owns")
        return json_response(
            {
                "customers": customers,
                "model_version": state.churn_version,
                "value_version": state.value_version,
                "snapshot_as_of": state.snapshot.as_of,
            }
        )

    # -- retention plans ---------------------------------------------------------------------------

    @bentoml.api(input_spec=RetentionPlanRequest, output_spec=RetentionPlanResponse)
    def retention_plan(
        self,
        offer: Offer,
        budget: float,
        control_share: float = 0.1,
        cost: float | None = None,
        campaign_id: str | None = None,
        channel: str | None = None,
        seed: int = 0,
    ) -> Response:
        """Whom to send ``offer``: customers by uplift x forecast value - offer cost, only positive
        ones, as many as ``budget`` pays for, with a random control group held out; needs an uplift
        model (503 without one)."""
        state = self._ready_state()
        if isinstance(state, Response):
            return state
        if state.uplift_version is None:
            return error_response(
                503,
                "The retention plan needs an uplift model: `crm train uplift --data DIR --register`,"
                " `crm promote uplift`, then /reload.",
            )
        request = RetentionPlanRequest.model_construct(
            offer=offer, budget=budget, control_share=control_share, cost=cost, campaign_id=campaign_id,
            channel=channel, seed=seed,
        )  # fmt: skip
        from serving.uplift_model import UnknownOffer  # loaded with the model already

        try:
            plan = state.retention_plan(request)
        except UnknownOffer as exc:  # a valid offer this model has not learnt
            return error_response(404, str(exc), "offer")
        except UserError as exc:  # a plan too large for one answer
            return error_response(400, str(exc), "budget")
        return json_response(plan)

    # -- events -----------------------------------------------------------------------------------

    @bentoml.api(route="/events", input_spec=EventsRequest, output_spec=EventsResponse)
    async def post_events(self, events: list[PostedEvent]) -> Response:
        """Log up to 10,000 contract events (on disk before the answer) and apply them at once;
        bad rows come back with their index and reason."""
        return await self.answer_events(events)

    async def answer_events(self, events: list[PostedEvent]) -> Response:
        """The body of /events (shared by the typed endpoint and the fast lane): the commit thread
        checks and logs the events while the event loop waits without blocking."""
        status, answer = await self.feed.accept_async(events)
        return json_response(answer, status)

    # -- operations -------------------------------------------------------------------------------

    @bentoml.api(input_spec=NoParameters, output_spec=ModelInfo)
    async def info(self) -> Response:
        """What is loaded: model URIs and versions, the snapshot, the last reload error (GET or POST)."""
        return json_response(self._info())

    @bentoml.api(route="/reload", input_spec=NoParameters, output_spec=ReloadResponse)
    async def reload_models(self) -> Response:
        """Reload the champions and the snapshot now, on the load thread (never a request thread);
        on failure the current models keep serving (503). A reload still running after
        ``CRM_RELOAD_TIMEOUT_SECONDS`` is answered 503 at once and goes on (/info tells its end);
        a /reload during one joins it."""
        future = self._in_background(self.reload)
        timeout = self.settings.reload_timeout_seconds
        try:
            ok = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except TimeoutError:
            running = f"The reload is still running after {timeout:g} s; /info reports how it ends."
            return json_response({"reloaded": False, **self._info(), "error": running}, 503)
        return json_response({"reloaded": ok, **self._info()}, 200 if ok else 503)


CRMService.add_asgi_middleware(Guard, service=CRMService)
bound_http_parser()  # uvicorn's parser with header limits: BentoML passes no such option
