"""Ray Tune Searchers: the STEERAGE global search (Algorithms 1 and 2)."""

from steerage_ray.searchers.plan import SearchPlan
from steerage_ray.searchers.steerage import SteerageSearcher

__all__ = ["SearchPlan", "SteerageSearcher"]
