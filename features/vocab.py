"""The domain's vocabularies, declared once.

The input contract, the feature families, the simulator, the jobs, the service and the command
line's choices all take their words from here, so a tier, a category or a preset is spelt in one
place. Each vocabulary is a tuple (its order is meaningful where noted) and a ``Literal`` type of
the same words for typed configurations and request models.
"""

from __future__ import annotations

from typing import Literal, get_args

# -- the input contract ---------------------------------------------------------------------------

# The order fixes the small-integer codes the feature SQL compares (features.families).
EVENT_TYPES = (
    "view",
    "add_to_cart",
    "purchase",
    "return",
    "app_open",
    "community_post",
    "service_ticket",
    "coupon_redeem",
    "push_open",
    "push_sent",
    "ad_impression",
    "ad_click",
)
ITEM_EVENT_TYPES = ("view", "add_to_cart")  # events that must name an item
# Marketing exposures: what the brand sent or showed a customer (with its channel and, where there
# is one, the item), not what the customer did; no engagement or activity count includes them.
EXPOSURE_EVENT_TYPES = ("push_sent", "ad_impression", "ad_click")
# Events that show a customer engaging with the brand (not only buying).
ENGAGED_EVENT_TYPES = ("app_open", "view", "community_post", "push_open", "add_to_cart")

# The order fixes the channel codes of the feature SQL.
CHANNELS = ("mall", "app", "offline_store", "social", "partner")

MemberTier = Literal["standard", "silver", "gold", "platinum"]
MEMBER_TIERS: tuple[str, ...] = get_args(MemberTier)  # lowest first: the rank is the position
TIER_RANK = {tier: rank for rank, tier in enumerate(MEMBER_TIERS)}
UNKNOWN_TIER = "unknown"  # what the snapshot says of a customer without a tier

# Randomised campaigns (the optional campaigns table): each customer of a campaign's audience is
# drawn into the treatment arm (gets the offer) or the control arm (held out, to measure it).
CampaignArm = Literal["treatment", "control"]
CAMPAIGN_ARMS: tuple[str, ...] = get_args(CampaignArm)
TREATMENT, CONTROL = CAMPAIGN_ARMS
# The retention offers the brand sends (the contract keeps ``offer`` free text; these are its own).
Offer = Literal["coupon", "upgrade_offer", "service_call", "bundle", "push"]
OFFERS: tuple[str, ...] = get_args(Offer)

# The brand's categories (the contract keeps ``category`` free text; these are the ones it uses).
CATEGORIES = ("phone", "smart_home", "wearable", "tv", "laptop", "accessory", "other")
ECOSYSTEM = ("phone", "smart_home", "wearable", "tv", "laptop", "accessory")  # device categories owned

# -- jobs -------------------------------------------------------------------------------------------

Preset = Literal["tiny", "demo", "large"]
PRESETS: tuple[str, ...] = get_args(Preset)
DemoPreset = Literal["tiny", "demo"]  # what `crm demo` runs on (large is for benchmarks)
DEMO_PRESETS: tuple[str, ...] = get_args(DemoPreset)

Population = Literal["active", "all"]
POPULATIONS: tuple[str, ...] = get_args(Population)

ChurnSort = Literal["expected_loss", "probability"]
CHURN_SORTS: tuple[str, ...] = get_args(ChurnSort)

Split = Literal["time", "random-per-user"]
SPLITS: tuple[str, ...] = get_args(Split)

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = get_args(Engine)

Dataset = Literal["cdnow", "movielens-100k"]
DATASETS: tuple[str, ...] = get_args(Dataset)

ModelName = Literal["churn", "recommender", "value", "uplift"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)

# -- churn labels and lifecycle stages ---------------------------------------------------------------

# Events that show a customer still dealing with the brand: what the activity churn label and the
# lifecycle stage count. A bare app open is left out (a device of a customer who has left still
# opens the app now and then, and those opens kept long-gone customers out of the lapsed stage),
# and so is a return (it answers an earlier purchase).
ACTIVITY_EVENT_TYPES = (
    "view",
    "add_to_cart",
    "purchase",
    "community_post",
    "push_open",
    "coupon_redeem",
    "service_ticket",
)
# The events that are not engagement: a log of only these (CDNOW) cannot carry the activity label.
PURCHASE_EVENT_TYPES = ("purchase", "return")

# activity: no activity event in the horizon, over customers active shortly before the as-of date;
# purchase: no purchase in the horizon (the label of purchase-only logs)
ChurnLabel = Literal["activity", "purchase"]
CHURN_LABELS: tuple[str, ...] = get_args(ChurnLabel)

# A customer's place in the lifecycle, in the order a customer passes through them; the rules that
# assign them are declared with the feature (features.families.LIFECYCLE).
LifecycleStage = Literal["prospect", "new", "active", "loyal", "at_risk", "lapsed"]
LIFECYCLE_STAGES: tuple[str, ...] = get_args(LifecycleStage)
LAPSED = "lapsed"
