"""Ray Tune Searchers: the STEERAGE global search (default mode and the paper's
Algorithms 1 and 2)."""

from steerage_ray.searchers.steerage import SteerageSearcher
from steerage_ray.strategies.plan import ALGORITHMS, GuidedPlan, SearchPlan

__all__ = ["ALGORITHMS", "GuidedPlan", "SearchPlan", "SteerageSearcher"]
