"""What Tune's own saved state says about an experiment's trials.

Tune saves an experiment in pieces: its trials (``experiment_state-<session>.json``)
and the search algorithm's state (the searcher's pickle and the generator's counter).
Each file is replaced whole, but not the set: a driver killed while Tune copies them
to storage leaves a searcher that already proposed a trial Tune's trial list never
held. Restored, Tune never runs that trial, and the searcher would wait for it.
:func:`saved_trial_ids` reads the trial list Tune restores from, so the searcher can
tell such a trial at once.

The file format is Tune's (ray 2.x): ``trial_data`` is a list of pairs whose first
member is the trial's JSON state with its ``trial_id``. Anything else (no file, another
format) gives None, and the searcher falls back to waiting for a report.
"""

from __future__ import annotations

import glob
import json
import logging
import os

logger = logging.getLogger(__name__)

EXPERIMENT_STATE_PATTERN = "experiment_state-*.json"


def saved_trial_ids(directory: str) -> set[str] | None:
    """The trial ids of the newest Tune experiment state in ``directory`` (the one
    ``Tuner.restore`` resumes from), or None when there is none or it cannot be read."""
    paths = sorted(glob.glob(os.path.join(directory, EXPERIMENT_STATE_PATTERN)))
    if not paths:
        return None
    try:
        with open(paths[-1]) as file:
            trial_data = json.load(file)["trial_data"]
        return {json.loads(state)["trial_id"] for state, _ in trial_data}
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.debug("cannot read Tune's trial list from %s: %s", paths[-1], error)
        return None
