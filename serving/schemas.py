"""Request and response models of the service, and the limits they enforce.

Every endpoint takes one request model: unknown fields are refused and values are taken as JSON
gives them (``"5"`` is not an integer, ``1`` is not a boolean). The hot endpoints' models serve
both the typed API and the fast lane (see :mod:`serving.http`); the response models document the
answers in the OpenAPI document, while the endpoints write the same JSON directly.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from features.vocab import (
    CHANNELS,
    LIFECYCLE_STAGES,
    MEMBER_TIERS,
    UNKNOWN_TIER,
    ChurnSort,
    LifecycleStage,
    Offer,
)

MAX_K = 100
MAX_BATCH = 10_000
MAX_ID_LENGTH = 200
TIERS = (*MEMBER_TIERS, UNKNOWN_TIER)

CustomerId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Category = Annotated[str, Field(min_length=1, max_length=100)]
K = Annotated[int, Field(ge=1, le=MAX_K, description="List length, 1-100.")]
CustomerIds = Annotated[list[CustomerId], Field(min_length=1, max_length=MAX_BATCH)]
Categories = Annotated[list[Category], Field(max_length=50)]
ItemId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
ExcludeItems = Annotated[
    list[ItemId], Field(max_length=1000, description="Items never to offer in this answer.")
]
EventText = Annotated[str, Field(max_length=MAX_ID_LENGTH)]

# the /churn_list parameters
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Tiers = Annotated[list[Literal[TIERS]], Field(max_length=len(TIERS))]  # type: ignore[valid-type]
Regions = Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=100)]
Owns = Annotated[list[Category], Field(max_length=20, description="Categories owned.")]
Limit = Annotated[int, Field(ge=1, le=MAX_BATCH)]
Stages = Annotated[
    list[LifecycleStage],
    Field(max_length=len(LIFECYCLE_STAGES), description="Lifecycle stages (default: every one but lapsed)."),
]


# ---------------------------------------------------------------------------------------------
# request models


def request_config(example: dict) -> ConfigDict:
    """A request body's config: unknown fields refused, no coercion, and the example the OpenAPI
    page shows."""
    return ConfigDict(extra="forbid", strict=True, json_schema_extra={"example": example})


class RecommendRequest(BaseModel):
    model_config = request_config({"customer_id": "C0000001", "k": 5, "categories": ["phone", "wearable"]})

    customer_id: CustomerId
    k: K = 10
    exclude_owned: bool = True
    categories: Categories | None = None
    exclude_items: ExcludeItems | None = None


class RecommendBatchRequest(BaseModel):
    model_config = request_config({"customer_ids": ["C0000001", "C0000002", "someone-new"], "k": 3})

    customer_ids: CustomerIds
    k: K = 10
    exclude_owned: bool = True
    categories: Categories | None = None


class ChurnScoreRequest(BaseModel):
    model_config = request_config({"customer_ids": ["C0000001", "C0000002"]})

    customer_ids: CustomerIds


class ChurnListRequest(BaseModel):
    model_config = request_config(
        {"min_probability": 0.5, "tiers": ["gold", "platinum"], "owns": ["phone"], "limit": 20}
    )

    min_probability: Probability = 0.0
    tiers: Tiers | None = None
    regions: Regions | None = None
    owns: Owns | None = None
    limit: Limit = 100
    sort: ChurnSort = "expected_loss"
    stages: Stages | None = None


class WinbackListRequest(BaseModel):
    model_config = request_config({"min_probability": 0.3, "tiers": ["gold", "platinum"], "limit": 20})

    min_probability: Probability = 0.0  # of coming back
    tiers: Tiers | None = None
    regions: Regions | None = None
    owns: Owns | None = None
    limit: Limit = 100


class PostedEvent(BaseModel):
    """One event of the input contract; a missing or bad value is a rejected row, not a 400."""

    model_config = request_config(
        {"customer_id": "C0000001", "ts": "2025-12-30T10:15:00Z", "event_type": "purchase",
         "item_id": "I00042", "quantity": 1, "amount": 699.0, "channel": "app", "event_id": "app-7f3a"}
    )  # fmt: skip

    customer_id: EventText | None = None
    ts: EventText | None = Field(None, description="ISO 8601; without an offset it is UTC.")
    event_type: EventText | None = None
    item_id: EventText | None = None
    quantity: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None  # the contract's BIGINT
    amount: float | None = None
    channel: EventText | None = None
    event_id: CustomerId | None = Field(None, description="Makes a retry idempotent.")


class EventsRequest(BaseModel):
    model_config = request_config(
        {"events": [{"customer_id": "C0000001", "ts": "2025-12-30T10:15:00Z", "event_type": "purchase",
                     "item_id": "I00042", "event_id": "app-7f3a"}]}
    )  # fmt: skip

    events: Annotated[list[PostedEvent], Field(max_length=MAX_BATCH)]


class NoParameters(BaseModel):
    """The body of /info and /reload: nothing, or an empty object."""

    model_config = request_config({})


# ---------------------------------------------------------------------------------------------
# response models


class Item(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {"item_id": "I00232", "category": "accessory", "subcategory": "case", "price": 26.46,
                        "score": 0.110969, "reason": "goes with the phone bought 4 months ago"}
        }
    )  # fmt: skip

    item_id: str
    category: str
    subcategory: str | None = Field(description="From the item catalogue; null where it has none.")
    price: float | None = Field(
        description="The catalogue price, rounded to cents; null where the catalogue has none."
    )
    score: float = Field(
        ge=0.0,
        le=1.0,
        description="The chance that this item is the customer's next purchase among the items this"
        " request could offer (every item its filters allow, less those it excludes): the softmax of"
        " the recommender's scores over those candidates, or, for a popularity fallback, the item's"
        " share of purchases among the same candidates. One scale for every answer, fallbacks"
        " included: comparable across customers and requests; a list is sorted by it and sums to at"
        " most 1. Rounded to 6 decimals.",
    )
    reason: str = Field(
        description="Why the item is offered, in a few words that are true for this customer (e.g."
        " 'goes with the phone bought 2 months ago', 'popular with phone owners', 'popular in"
        " wearables this month'); a device is only named when the customer owns one."
    )


class Recommendation(BaseModel):
    customer_id: str
    items: list[Item] = Field(description="Best first.")
    fallback: bool = Field(description="True when the customer is unknown and popularity answered.")


class RecommendResponse(Recommendation):
    model_version: str


class RecommendBatchResponse(BaseModel):
    results: list[Recommendation]
    model_version: str


class ChurnScore(BaseModel):
    customer_id: str
    known: bool = Field(description="False when the snapshot does not know the customer (no score).")
    churn_probability: float | None
    risk_band: str | None
    top_reasons: list[str]
    customer_value: float | None = Field(
        description="Forecast net revenue of the next 12 months if the customer stays (the value"
        " model's; the past year's revenue where no value model is registered)."
    )
    value_at_risk: float | None = Field(description="churn_probability x customer_value.")
    suggested_action: str | None
    lifecycle_stage: LifecycleStage | None


class ChurnScoreResponse(BaseModel):
    scores: list[ChurnScore]
    model_version: str


class ChurnListEntry(BaseModel):
    rank: int
    customer_id: str
    churn_probability: float
    risk_band: str
    customer_value: float
    value_at_risk: float
    top_reasons: list[str]
    suggested_action: str
    member_tier: str | None
    region: str | None
    lifecycle_stage: LifecycleStage | None


class ChurnListResponse(BaseModel):
    customers: list[ChurnListEntry]
    model_version: str
    snapshot_as_of: str


class WinbackListEntry(BaseModel):
    rank: int
    customer_id: str
    return_probability: float = Field(
        description="Chance of being active again within the value model's horizon."
    )
    customer_value: float = Field(
        description="Forecast net revenue of the next 12 months if the customer returns."
    )
    winback_value: float = Field(
        description="return_probability x customer_value: what the list is ranked by."
    )
    top_reasons: list[str]
    suggested_action: str
    member_tier: str | None
    region: str | None


class WinbackListResponse(BaseModel):
    customers: list[WinbackListEntry]
    model_version: str
    value_version: str
    snapshot_as_of: str


class ModelInfo(BaseModel):
    ready: bool
    churn_model: str | None
    churn_version: str | None
    recommender_model: str | None
    recommender_version: str | None
    value_model: str | None = Field(
        None, description="The value model whose forecast is customer_value; null: past-year revenue."
    )
    value_version: str | None = None
    uplift_model: str | None = Field(None, description="The uplift model of /retention_plan; null: none.")
    uplift_version: str | None = None
    snapshot: str | None
    snapshot_as_of: str | None
    loaded_at: float | None
    lists_precomputed: bool = Field(
        False,
        description="The default-filter recommendation lists are precomputed (until then each such"
        " request computes its list, with the same answer).",
    )
    reloads: int
    last_reload_error: str | None


class ReloadResponse(ModelInfo):
    reloaded: bool


class EventReject(BaseModel):
    index: int = Field(description="The event's position in the posted list.")
    reason: str = Field(description="The reason `crm data validate` gives such a row.")


class EventsResponse(BaseModel):
    accepted: int = Field(description="Events in the log (on disk) now, retries of logged ones included.")
    rejected: list[EventReject]


# ---------------------------------------------------------------------------------------------
# /retention_plan

# The largest plan one answer carries; a larger audience is a batch job (`crm retention-plan`).
MAX_PLAN = 100_000
Money = Annotated[float, Field(ge=0.0, le=1e12)]


class RetentionPlanRequest(BaseModel):
    model_config = request_config({"offer": "coupon", "budget": 5000.0, "control_share": 0.1, "seed": 7})

    offer: Offer
    budget: Money = Field(description="What the treated customers' offers may cost at most.")
    control_share: float = Field(0.1, ge=0.0, le=0.95, description="Share held out at random.")
    cost: Money | None = Field(None, description="Cost per treated customer (default: the offer's mean).")
    campaign_id: CustomerId | None = Field(None, description="Default: PLAN-<snapshot date>-<offer>.")
    channel: Literal[CHANNELS] | None = None  # type: ignore[valid-type]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="Seed of the control group's draw.")] = 0


class RetentionPlanEntry(BaseModel):
    rank: int
    customer_id: str
    arm: Literal["treatment", "control"]
    cost: float = Field(description="What the offer costs for this customer (0 in the control group).")
    uplift: float = Field(description="Change in the chance of being retained if sent the offer.")
    risk: float = Field(description="Chance of not being retained without the offer.")
    customer_value: float
    expected_value_saved: float = Field(description="uplift x customer_value - offer cost.")


class RetentionPlanResponse(BaseModel):
    campaign_id: str
    offer: str
    ts: str = Field(description="The campaign's start: the snapshot's as-of date.")
    channel: str | None
    cost: float
    budget: float
    treated: int
    control: int
    spend: float = Field(description="What the treated customers' offers cost; never above the budget.")
    expected_value_saved: float = Field(description="Summed over the treated customers.")
    customers: list[RetentionPlanEntry]
    uplift_version: str
    value_version: str | None = Field(description="null: customer values are past-year revenue.")
    snapshot_as_of: str
