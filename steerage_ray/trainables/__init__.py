"""Ray Tune trainables: train one sampled architecture and report its scores."""

from steerage_ray.trainables.train_architecture import (
    CHECKPOINT_SECONDS,
    FailurePolicy,
    TrialLost,
    METRIC,
    MODE,
    load_checkpoint_state,
    make_trainable,
    train_architecture,
    train_config,
    with_resources,
)

__all__ = ["CHECKPOINT_SECONDS", "FailurePolicy", "METRIC", "MODE", "load_checkpoint_state",
           "make_trainable", "train_architecture", "train_config", "TrialLost",
           "with_resources"]
