"""Ray Tune trainables: train one sampled architecture and report its scores."""

from steerage_ray.trainables.train_architecture import (
    CHECKPOINT_SECONDS,
    METRIC,
    MODE,
    TRAINING_KEYS,
    check_space_fits,
    load_checkpoint_state,
    load_dataset_spec,
    make_trainable,
    train_architecture,
    with_resources,
)

__all__ = ["CHECKPOINT_SECONDS", "METRIC", "MODE", "TRAINING_KEYS", "check_space_fits",
           "load_checkpoint_state", "load_dataset_spec",
           "make_trainable", "train_architecture", "with_resources"]
