"""What Tune's own saved state says about an experiment's trials.

Tune saves an experiment in pieces: its trials (``experiment_state-<session>.json``),
its search generator's count of the trials it created (``search_gen_state-<session>
.json``, a pickle) and the searcher's pickle. Each file is replaced whole, but not the
set: a driver killed while Tune copies them to storage can leave them from different
moments. Seen in the CLI's kill-and-resume test:

* the searcher already proposed a trial that Tune's trial list never held: restored,
  Tune never runs it, and the searcher would wait for it;
* the generator counted a trial that neither the trial list nor the searcher holds:
  restored, Tune starts one trial fewer than the searcher's plan needs.

:func:`saved_trial_ids` and :func:`created_trial_count` read what Tune restores from,
so the searcher can tell both at once. The formats are Tune's (ray 2.x): ``trial_data``
is a list of pairs whose first member is the trial's JSON state with its ``trial_id``;
the generator's state is a dict with ``counter``. Anything else (no file, another
format) gives None, and the searcher goes on as before: it waits for a report.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import pickle

logger = logging.getLogger(__name__)

EXPERIMENT_STATE_PATTERN = "experiment_state-*.json"
SEARCH_STATE_PATTERN = "search_gen_state-*.json"


def _newest(directory: str, pattern: str) -> str | None:
    """The newest of Tune's state files matching ``pattern`` (the names carry the
    session's start time; Tune restores from the greatest)."""
    paths = sorted(glob.glob(os.path.join(directory, pattern)))
    return paths[-1] if paths else None


def saved_trial_ids(directory: str) -> set[str] | None:
    """The trial ids of the newest Tune experiment state in ``directory`` (the one
    ``Tuner.restore`` resumes from), or None when there is none or it cannot be read."""
    path = _newest(directory, EXPERIMENT_STATE_PATTERN)
    if path is None:
        return None
    try:
        with open(path) as file:
            trial_data = json.load(file)["trial_data"]
        return {json.loads(state)["trial_id"] for state, _ in trial_data}
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.debug("cannot read Tune's trial list from %s: %s", path, error)
        return None


def created_trial_count(directory: str) -> int | None:
    """How many trials Tune's search generator had created when it last saved its state
    in ``directory`` (what a restored experiment counts against ``num_samples``), or
    None when there is no such state or it cannot be read."""
    path = _newest(directory, SEARCH_STATE_PATTERN)
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return int(pickle.load(file)["counter"])
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
            KeyError, TypeError, ValueError) as error:
        logger.debug("cannot read Tune's trial count from %s: %s", path, error)
        return None
