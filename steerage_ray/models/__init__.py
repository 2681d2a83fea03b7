"""Model families of the search (FFNN, LeNet-style CNN, CIFAR ResNet), quantization and
parameter/FLOP counting. No Ray here: everything runs and tests without a cluster."""

from steerage_ray.models.builder import build_model
from steerage_ray.models.counting import count_dense_params, count_flops, count_macs, count_params
from steerage_ray.models.ffnn import build_ffnn
from steerage_ray.models.lenet import LeNet, build_lenet, lenet5_baseline
from steerage_ray.models.probe import eval_mode, zero_input
from steerage_ray.models.quantization import QUANT_BITS, fake_quantize, quantize_model
from steerage_ray.models.resnet import BasicBlock, Bottleneck, ResNet, build_resnet, resnet18_cifar

__all__ = [
    "QUANT_BITS",
    "BasicBlock",
    "Bottleneck",
    "LeNet",
    "ResNet",
    "build_ffnn",
    "build_lenet",
    "build_model",
    "build_resnet",
    "count_dense_params",
    "count_flops",
    "count_macs",
    "count_params",
    "eval_mode",
    "fake_quantize",
    "lenet5_baseline",
    "quantize_model",
    "resnet18_cifar",
    "zero_input",
]
