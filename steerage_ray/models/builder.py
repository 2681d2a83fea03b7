"""Turn a flat search-space config (docs/ARCHITECTURE.md) into a PyTorch model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from steerage_ray.checks import config_integer, one_of
from steerage_ray.families import check_family
from steerage_ray.models._checks import POOLS
from steerage_ray.models.ffnn import build_ffnn
from steerage_ray.models.lenet import build_lenet
from steerage_ray.models.resnet import build_resnet

_INPUT_RANK = {"ffnn": 1, "lenet": 3, "resnet": 3}
Config = Mapping[str, object]


def build_model(
    family: str,
    config: Config,
    input_shape: Sequence[int],
    n_classes: int,
    *,
    seed: int | None = None,
) -> nn.Module:
    """Build the network a config describes.

    ``input_shape`` is the shape of one example *after* the config's dimensionality
    reduction or image downsampling (call ``data.prepare_for_config`` first): ``(d,)``
    for ``ffnn``, ``(C, H, W)`` for ``lenet`` and ``resnet``. Keys that do not shape the
    network (``dr_method``, ``dr_ratio``, ``image_filter``, ``quant_bits``) are ignored
    here; ``quant_bits`` is applied after training with ``quantize_model``. When the
    config carries ``image_size`` it must match ``input_shape``, which catches data that
    was not prepared for the config.

    ``seed`` (keyword-only) makes weight initialisation reproducible without touching
    the global torch RNG; ``None`` draws from the global RNG as torch layers normally do.
    """
    check_family(family)
    input_shape = tuple(input_shape)
    if len(input_shape) != _INPUT_RANK[family]:
        expected = "(d,) features" if family == "ffnn" else "(C, H, W) images"
        raise ValueError(
            f"input_shape for family {family!r} must be {expected}, got {input_shape}"
            + ("; flatten images first" if family == "ffnn" else "")
        )
    if family != "ffnn" and config.get("image_size") is not None:
        image_size = config_integer(config, "image_size")
        if input_shape[1:] != (image_size, image_size):
            raise ValueError(
                f"input_shape {input_shape} does not match config['image_size'] = "
                f"{image_size}; apply data.prepare_for_config(dataset, config) first"
            )
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return _BUILDERS[family](config, input_shape, n_classes)


def _ffnn(config: Config, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    num_layers = config_integer(config, "num_layers")
    hidden_sizes = [config_integer(config, f"neurons_{i}") for i in range(1, num_layers + 1)]
    return build_ffnn(input_shape[0], hidden_sizes, n_classes)


def _lenet(config: Config, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    channels, height, width = input_shape
    return build_lenet(
        in_channels=channels,
        image_size=(height, width),
        n_classes=n_classes,
        conv_filters=(config_integer(config, "conv1_filters"),
                      config_integer(config, "conv2_filters")),
        kernel_size=config_integer(config, "kernel_size"),
        pools=(_choice(config, "pool1", POOLS), _choice(config, "pool2", POOLS)),
        fc_sizes=[config_integer(config, key) for key in ("fc1", "fc2", "fc3")],
    )


def _resnet(config: Config, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    channels, height, width = input_shape
    return build_resnet(
        in_channels=channels,
        image_size=(height, width),
        n_classes=n_classes,
        stem_filters=config_integer(config, "conv1_filters"),
        stage_filters=[config_integer(config, f"conv{i}_filters") for i in range(2, 6)],
        blocks=[config_integer(config, f"blocks_{i}") for i in range(1, 5)],
        pooling=_choice(config, "pooling", POOLS),
        fc_layers=config_integer(config, "fc_layers"),
    )


_BUILDERS = {"ffnn": _ffnn, "lenet": _lenet, "resnet": _resnet}


def _choice(config: Config, key: str, allowed: tuple[str, ...]) -> str:
    if config.get(key) is None:
        raise ValueError(f"config is missing key {key!r} (or it is None)")
    return one_of(config[key], f"config[{key!r}]", allowed)
