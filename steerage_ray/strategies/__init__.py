"""The search algorithms behind ``SteerageSearcher``, free of Ray.

A strategy reads the search's ``History`` and answers ``propose(history)`` with a
``Proposal`` (train this next), None (wait for results) or ``DONE`` (nothing left to
propose: the plan is complete or the space exhausted):

- ``GuidedStrategy`` (``guided.py``): the default mode;
- ``PaperStrategy`` (``paper.py``): the paper's Algorithms 1 and 2 in rounds.
"""

from steerage_ray.strategies.history import DONE, History, Proposal, Record, round_scores

__all__ = ["DONE", "History", "Proposal", "Record", "round_scores"]
