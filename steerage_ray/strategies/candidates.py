"""The architectures the guided search scores before each proposal, with their predictions.

Maximising an acquisition over a whole architecture space is itself a search. The
guided strategy keeps a finite candidate set drawn from three sources, each covering
what the others miss:

* **local**: the one-step neighbours of the best architectures observed (by label and
  by the model's mean), which is where most improvements are found late in a search;
* **global**: uniform random architectures and members of the seeded Sobol pool, so
  regions the search never visited can still win;
* **evolved**: the final population of an EES run (the paper's Algorithm 2) over one
  ensemble member drawn at random (a Thompson sample), seeded with that member's best
  candidates and the best architectures observed: multi-step moves the neighbourhood
  cannot reach in one step.

Every candidate carries one prediction per ensemble member (``predictions``, shape
``(n_members, n_candidates)``); members refitted on new data re-predict the whole set,
new candidates are predicted by every member. Architectures already proposed, running
or observed never enter the set; the next refit's copy leaves out those proposed since
(``unseen``), and until then proposals skip them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class CandidateSet:
    """Distinct, unseen candidate architectures (code rows) and their member predictions."""

    def __init__(self, n_dims: int, n_members: int) -> None:
        self.codes = np.empty((0, n_dims))
        self.predictions = np.empty((n_members, 0))
        self._keys: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self.codes)

    def reset(self) -> None:
        self.codes = self.codes[:0]
        self.predictions = self.predictions[:, :0]
        self._keys = {}

    def add(self, codes: np.ndarray, admissible: Callable[[bytes, np.ndarray], bool],
            predict: Callable[[np.ndarray], np.ndarray]) -> None:
        """Add the rows of ``codes`` that are new here and ``admissible``; predict them."""
        fresh, keys = [], set()
        for row in codes:
            key = row.tobytes()
            if key not in self._keys and key not in keys and admissible(key, row):
                keys.add(key)
                fresh.append(row)
        if not fresh:
            return
        fresh = np.array(fresh)
        start = len(self.codes)
        self.codes = np.concatenate([self.codes, fresh])
        self.predictions = np.concatenate([self.predictions, predict(fresh)], axis=1)
        self._keys.update((row.tobytes(), start + i) for i, row in enumerate(fresh))

    def repredict(self, members: list[int],
                  predict_member: Callable[[int, np.ndarray], np.ndarray]) -> None:
        """Refresh the predictions of the listed (refitted) members."""
        for member in members:
            self.predictions[member] = predict_member(member, self.codes)

    def unseen(self, seen: frozenset[bytes] | set[bytes]) -> "CandidateSet":
        """A copy without the candidates whose keys are in ``seen`` (proposed since
        the set was built); this set is left as it is."""
        keep = [i for i, row in enumerate(self.codes) if row.tobytes() not in seen]
        subset = CandidateSet(self.codes.shape[1], len(self.predictions))
        subset.codes = self.codes[keep]
        subset.predictions = self.predictions[:, keep]
        subset._keys = {row.tobytes(): i for i, row in enumerate(subset.codes)}
        return subset
