"""Export a local-search model as compact, deployable artifacts.

The compact module drops dead neurons and channels and replaces masked layers by plain
``nn.Linear``/``nn.Conv2d`` holding the masked weights (zeros stay zeros), so it needs
nothing from this package, except for two cases: skip-connected feed-forward parts
become :class:`SkipMLP` (a few lines of plain torch), and partial-area convolutions
stay :class:`PartialAreaConv2d` (their output-position masks are part of the function).
The TorchScript and ONNX exports load with plain ``torch.jit.load`` / any ONNX runtime
in every case.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from steerage_ray.local_search.graph import SparseFeedForward
from steerage_ray.local_search.masked import MaskedConv2d, MaskedLinear, PartialAreaConv2d
from steerage_ray.local_search.convnet import SparseConvNet
from steerage_ray.models import QUANT_BITS, quantize_model, zero_input

#: The single-file formats :meth:`ExportedModel.write` writes, with their file suffixes.
FILE_FORMATS = {"torchscript": "torchscript.pt", "state_dict": "state_dict.pt", "onnx": "onnx"}


class SkipMLP(nn.Module):
    """A feed-forward net whose every layer reads the input and all earlier hidden layers
    (concatenated in that order): the dense form of SCANN's skip-connected graph."""

    def __init__(self, in_features: int, hidden_sizes: list[int], n_classes: int) -> None:
        super().__init__()
        widths = [in_features]
        self.hidden = nn.ModuleList()
        for size in hidden_sizes:
            self.hidden.append(nn.Linear(sum(widths), size))
            widths.append(size)
        self.output = nn.Linear(sum(widths), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activations = [x]
        for layer in self.hidden:
            activations.append(F.relu(layer(torch.cat(activations, dim=1))))
        return self.output(torch.cat(activations, dim=1))


def compact_module(model: nn.Module) -> nn.Module:
    """The dense, dead-unit-free module computing the same function as ``model``.

    ``model`` is a :class:`SparseFeedForward` or a :class:`SparseConvNet`, or any model
    without masks (e.g. the dense global-search winner), which is copied as it is; the
    result is in eval mode on the CPU.
    """
    if isinstance(model, SparseFeedForward):
        module = _dense_feed_forward(model.compact())
    elif isinstance(model, SparseConvNet):
        compact = model.compact()
        features = [_dense_layer(layer) for layer in compact.features]
        head = _dense_feed_forward(compact.head)
        head_layers = list(head) if isinstance(head, nn.Sequential) else [head]
        module = nn.Sequential(*features, nn.Flatten(), *head_layers)
    elif any(isinstance(m, (MaskedLinear, MaskedConv2d)) for m in model.modules()):
        raise ValueError("a model with masked layers must be a SparseFeedForward or "
                         f"SparseConvNet to be compacted, got {type(model).__name__}")
    else:
        module = copy.deepcopy(model)
    return module.cpu().eval()


def _dense_feed_forward(net: SparseFeedForward) -> nn.Module:
    if net.skip_connections:
        module = SkipMLP(net.in_features, net.hidden_sizes, net.n_classes)
        linears = [*module.hidden, module.output]
    else:
        linears = [nn.Linear(layer.in_features, layer.out_features) for layer in net.layers]
        layers: list[nn.Module] = []
        for linear in linears:
            layers += [linear, nn.ReLU()]
        module = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for linear, masked in zip(linears, net.layers):
            linear.to(masked.weight)
            linear.weight.copy_(masked.masked_weight())
            linear.bias.copy_(masked.bias)
    return module


def _dense_layer(layer: nn.Module) -> nn.Module:
    """Plain twin of a masked layer (partial-area convs stay, with the mask baked in)."""
    if isinstance(layer, PartialAreaConv2d):
        return copy.deepcopy(layer)
    if isinstance(layer, (MaskedConv2d, MaskedLinear)):
        dense = (nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                           layer.padding, layer.dilation, layer.groups, layer.bias is not None)
                 if isinstance(layer, MaskedConv2d)
                 else nn.Linear(layer.in_features, layer.out_features, layer.bias is not None))
        dense.to(layer.weight)
        with torch.no_grad():
            dense.weight.copy_(layer.masked_weight())
            if layer.bias is not None:
                dense.bias.copy_(layer.bias)
        return dense
    return copy.deepcopy(layer)


def to_torchscript(module: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of a compact module (loads with ``torch.jit.load`` alone).

    TorchScript is deprecated in recent torch but remains the one format that both runs
    and reloads with nothing but torch; its deprecation warning is silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(module)


def onnx_available() -> bool:
    return importlib.util.find_spec("onnx") is not None


def to_onnx(module: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """ONNX bytes of a compact module, batch dimension dynamic.

    Uses the TorchScript-based exporter (``dynamo=False``): the dynamo exporter needs
    the ``onnxscript`` package, which is not a dependency.
    """
    if not onnx_available():
        raise ValueError("ONNX export needs the `onnx` package; pip install onnx")
    buffer = io.BytesIO()
    example = zero_input(module, input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    return buffer.getvalue()


@dataclass
class ExportedModel:
    """The artifacts of one exported model; ``files`` lists what ``save`` wrote."""

    module: nn.Module
    torchscript: torch.jit.ScriptModule
    quantized: nn.Module
    quant_bits: int
    input_shape: tuple[int, ...]
    onnx: bytes | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def save(self, directory: str | Path) -> dict[str, Path]:
        """Write ``model.pt`` (the pickled compact module), ``state_dict.pt``,
        ``model.torchscript.pt``, ``model_q{bits}.pt`` and, when available, ``model.onnx``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.files = {
            "module": directory / "model.pt",
            "state_dict": directory / "state_dict.pt",
            "torchscript": directory / "model.torchscript.pt",
            "quantized": directory / f"model_q{self.quant_bits}.pt",
        }
        torch.save(self.module, self.files["module"])
        torch.save(self.state_dict, self.files["state_dict"])
        self.torchscript.save(str(self.files["torchscript"]))
        torch.save(self.quantized, self.files["quantized"])
        if self.onnx is not None:
            self.files["onnx"] = directory / "model.onnx"
            self.files["onnx"].write_bytes(self.onnx)
        return self.files

    def write(self, fmt: str, path: str | Path) -> Path:
        """Write one artifact, ``fmt`` from :data:`FILE_FORMATS`, to the file ``path``."""
        if fmt not in FILE_FORMATS:
            raise ValueError(f"format must be one of {tuple(FILE_FORMATS)}, got {fmt!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "torchscript":
            self.torchscript.save(str(path))
        elif fmt == "state_dict":
            torch.save(self.state_dict, path)
        elif self.onnx is None:
            raise ValueError("this export has no ONNX artifact; export with onnx=True")
        else:
            path.write_bytes(self.onnx)
        return path


def export_model(model: nn.Module, input_shape: tuple[int, ...], *, quant_bits: int = 32,
                 onnx: bool | None = None) -> ExportedModel:
    """Compact module, TorchScript, quantized copy (``quant_bits``, via
    ``steerage_ray.models.quantize_model``) and ONNX (default: when ``onnx`` imports)."""
    if quant_bits not in QUANT_BITS:
        raise ValueError(f"quant_bits must be one of {QUANT_BITS}, got {quant_bits!r}")
    module = compact_module(model)
    want_onnx = onnx_available() if onnx is None else onnx
    return ExportedModel(
        module=module,
        torchscript=to_torchscript(module),
        quantized=quantize_model(module, quant_bits).eval(),
        quant_bits=quant_bits,
        input_shape=tuple(input_shape),
        onnx=to_onnx(module, tuple(input_shape)) if want_onnx else None,
    )
