"""A seeded simulator of the brand's customers, written in the input contract, with ground truth.

The generative model (weekly steps over two years, 2024-01-01 .. 2025-12-31):

- customers (:mod:`.population`): age band, gender, region, signup date, member tier and points;
  a latent taste vector (``TASTE_DIM``), an activity level, a service-quality latent and an
  engagement level that drifts (for some customers downwards);
- items (:mod:`.population`): categories and subcategories of the brand, prices, launch dates,
  latent vectors; an item is chosen inside its category by
  ``softmax(taste . item_vector / T + popularity)``, so purchases are predictable from history;
- phones (:mod:`.weekly`): a customer's own phone is replaced as it ages (a weekly chance
  logistic in its age, so a phone lasts two to three years); a new member buys a first phone
  soon after signing up; the phone owned at the start has an age from the lifecycle's steady
  state;
- category of any other purchase (:mod:`.weekly`): base weights, with the purchase rate
  calibrated so that the brand's shares of revenue hold (:mod:`.config`), times the cross-sell
  state: a fresh phone -> accessories and wearables in the following weeks; owning several
  categories -> smart home; an owned tv or laptop -> rarely another;
- events (:mod:`.events`): views and add-to-carts before each purchase (funnel), browsing views,
  some of which leave an abandoned cart, app opens, push opens (one push a week), community
  posts, service tickets, coupon redemptions, returns of some purchases within a month, with
  channels and seasonal promotions (Spring Festival, mid-June, early November);
- churn (:mod:`.weekly`): a weekly hazard that rises with recent service tickets, falling
  engagement, an ageing phone and few ecosystem categories and falls with tier and ecosystem
  depth; a churned customer stops buying and browsing (some keep a trickle of app opens);
- retention campaigns (:mod:`.campaigns`): every six weeks an audience, weighted towards
  customers at risk, is split at random into a treatment arm that gets the offer (coupon, service
  call, upgrade offer, bundle, push) and a control arm; the offer multiplies a treated customer's
  churn hazard and shopping for a quarter, by factors that differ between customers
  (price-sensitive customers answer coupons, open tickets a service call, some never react and a
  few react against); the ``campaigns`` table records the arms;
- marketing exposures (:mod:`.events`): pushes sent (opened or not) and ads in the mall and on
  social channels, clicked and bought at the brand's rates.

Ground truth in ``DIR/truth/``: ``customers.parquet`` (churn time, the date of the phone owned at
the start, taste vector, latents, price sensitivity and response to offers), ``monthly/`` (per
customer and month: weekly churn hazard, weekly purchase rate, alive at the month start),
``campaigns/`` (per campaign, audience customer and offer: the true chance of being retained with
and without the offer) and ``items.parquet`` (latent vectors, popularity). :mod:`.oracles` turns it into
oracle predictions; :mod:`.calibration` reads the calibration back from a data folder.

Customers are simulated in independent chunks (:mod:`.job`, each with its own child seed), so
memory is bounded by the chunk size, not by the preset.
"""

from features.synth.calibration import read_calibration
from features.synth.config import CHOICE_TEMPERATURE, TASTE_DIM, TASTE_SCALE, SynthConfig
from features.synth.job import SynthResult, run, simulator_version
from features.synth.oracles import (
    _read_truth,
    oracle_churn_scores,
    oracle_recommendations,
    true_campaign_effects,
    true_customers,
    true_items,
)
from features.vocab import CATEGORIES

__all__ = [
    "CATEGORIES",
    "CHOICE_TEMPERATURE",
    "TASTE_DIM",
    "TASTE_SCALE",
    "SynthConfig",
    "SynthResult",
    "_read_truth",  # bench/recommender_ceiling.py imports it; true_customers() is the public reader
    "read_calibration",
    "oracle_churn_scores",
    "oracle_recommendations",
    "run",
    "simulator_version",
    "true_campaign_effects",
    "true_customers",
    "true_items",
]
