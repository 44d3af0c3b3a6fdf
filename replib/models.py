"""Models shared by the chapters."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_choice, check_positive_int, check_probability
from .methods import (DepthDropoutBlock, DropConnectLinear, Dropout, GaussianDropout, MaxDrop, MaxPoolDropout,
                      SparseVDLinear, SpatialDropout, StandoutLinear)
from .methods.depth_dropout import residual_paths
from .methods.dropconnect import INFERENCE

# Model-level activations: name -> nn.Module class placed between layers. (Activations a
# method layer applies inside itself are replib.methods._activations.INNER_ACTIVATIONS.)
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Fully connected classifier with dropout on the input and after every hidden layer.

    ``sizes`` = (inputs, hidden..., outputs), e.g. (784, 800, 800, 10) for Hinton et al.
    (2012). Input ``(N, sizes[0])`` (or any shape that flattens to it), output logits
    ``(N, sizes[-1])``. ``hidden_layers`` lists the layers whose units carry the max-norm
    constraint (all but the output layer, as in the paper).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        p_input: float = 0.0,
        p_hidden: float = 0.0,
        init_std: float | None = None,
        noise: str = "dropout",
    ) -> None:
        super().__init__()
        noise_layer = {"dropout": Dropout, "gaussian": GaussianDropout}[check_choice(noise, ("dropout", "gaussian"), "noise")]
        if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must be at least two positive ints (inputs, ..., outputs), got {sizes!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.p_input = check_probability(p_input, "p_input")
        self.p_hidden = check_probability(p_hidden, "p_hidden")
        linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        if init_std is not None:  # the papers' N(0, sigma^2) init; None keeps PyTorch's default
            for layer in linears:
                nn.init.normal_(layer.weight, 0.0, init_std)
                nn.init.zeros_(layer.bias)
        layers: list[nn.Module] = [nn.Flatten()]
        if self.p_input > 0:
            layers.append(noise_layer(self.p_input))
        for layer in linears[:-1]:
            layers += [layer, ACTIVATIONS[activation]()]
            if self.p_hidden > 0:
                layers.append(noise_layer(self.p_hidden))
        layers.append(linears[-1])
        self.net = nn.Sequential(*layers)
        self.hidden_layers = linears[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class StandoutMLP(nn.Module):
    """Fully connected classifier whose hidden layers are :class:`~replib.methods.StandoutLinear`.

    ``sizes`` = (inputs, hidden..., outputs); input ``(N, sizes[0])``, logits ``(N, sizes[-1])``.
    """

    def __init__(self, sizes: Sequence[int], alpha: float, beta: float, activation: str = "relu") -> None:
        super().__init__()
        if len(sizes) < 3 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must be (inputs, hidden..., outputs) positive ints, got {sizes!r}")
        self.standout = nn.ModuleList(
            StandoutLinear(a, b, alpha, beta, activation) for a, b in zip(sizes[:-2], sizes[1:-1])
        )
        self.out = nn.Linear(sizes[-2], sizes[-1])
        self.hidden_layers = [layer.linear for layer in self.standout]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.standout:
            h = layer(h)
        return self.out(h)

    @torch.no_grad()
    def pre_activations_and_keep(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per hidden layer, the pre-activations s and keep probabilities π on ``x``, in eval mode."""
        if self.training:
            raise ValueError("call pre_activations_and_keep in eval mode (model.eval()): it follows the test-time flow")
        out, h = [], x.flatten(1)
        for layer in self.standout:
            out.append((layer.linear(h), layer.keep_probability(h)))
            h = layer(h)
        return out


class DropConnectMLP(nn.Module):
    """Fully connected classifier whose hidden layers are :class:`~replib.methods.DropConnectLinear`.

    Wan et al. (2013): DropConnect on every hidden layer, a plain softmax layer on top.
    ``sizes`` = (inputs, hidden..., outputs); input ``(N, sizes[0])``, logits ``(N, sizes[-1])``.
    :meth:`set_inference` switches every DropConnect layer between ``mean`` and ``gaussian``.
    """

    def __init__(self, sizes: Sequence[int], p: float = 0.5, activation: str = "relu", *,
                 masks: str = "per_example", inference: str = "mean", samples: int = 1000,
                 backend: str = "auto") -> None:
        super().__init__()
        if len(sizes) < 3 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must be (inputs, hidden..., outputs) positive ints, got {sizes!r}")
        self.dropconnect = nn.ModuleList(
            DropConnectLinear(a, b, p, activation=activation, masks=masks, inference=inference, samples=samples,
                              backend=backend)
            for a, b in zip(sizes[:-2], sizes[1:-1])
        )
        self.out = nn.Linear(sizes[-2], sizes[-1])
        self.hidden_layers = [layer.linear for layer in self.dropconnect]

    def set_inference(self, inference: str, samples: int | None = None) -> "DropConnectMLP":
        check_choice(inference, INFERENCE, "inference")
        for layer in self.dropconnect:
            layer.inference = inference
            if samples is not None:
                layer.samples = samples
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.dropconnect:
            h = layer(h)
        return self.out(h)


class SparseVDMLP(nn.Module):
    """Fully connected classifier whose every layer is a :class:`~replib.methods.SparseVDLinear` (Molchanov et al.
    2017, whose MNIST nets make every layer sparse, the output layer included).

    ``sizes`` = (inputs, hidden..., outputs); input ``(N, sizes[0])``, logits ``(N, sizes[-1])``. In ``eval()`` every
    weight with ``log alpha > threshold`` is pruned; :meth:`kl` is the summed KL term of the loss, :meth:`sparsity`
    the share of all weights pruned.
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu") -> None:
        super().__init__()
        if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"sizes must be at least two positive ints (inputs, ..., outputs), got {sizes!r}")
        self.layers = nn.ModuleList(SparseVDLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = ACTIVATIONS[check_choice(activation, ACTIVATIONS, "activation")]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        return h

    def kl(self) -> torch.Tensor:
        return sum(layer.kl() for layer in self.layers)

    def set_threshold(self, threshold: float) -> "SparseVDMLP":
        """Prune at ``log alpha > threshold`` from now on (every layer)."""
        for layer in self.layers:
            layer.threshold = float(threshold)
        return self

    def sparsity(self) -> float:
        """The share of all weights (biases aside) that ``eval()`` prunes at the layers' threshold."""
        pruned = sum(float((layer.log_alpha > layer.threshold).sum()) for layer in self.layers)
        return pruned / sum(layer.theta.numel() for layer in self.layers)


class LeNet(nn.Module):
    """LeNet for MNIST with dropout before the last fully connected layer (Gal & Ghahramani 2016, Figure 4).

    conv 5x5 (20) - ReLU - max-pool 2 - conv 5x5 (50) - ReLU - max-pool 2 - fc 500 - ReLU -
    dropout ``p`` - fc 10. Input ``(N, 784)`` or ``(N, 1, 28, 28)``, logits ``(N, 10)``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), Dropout(p), nn.Linear(500, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x.view(-1, 1, 28, 28)))


DROPOUT_KINDS = ("none", "dropout", "spatial")  # the SpatialDropout chapter's arms
NOISE_KINDS = (*DROPOUT_KINDS, "gaussian", "maxdrop")  # what make_dropout builds


def make_dropout(kind: str, p: float) -> nn.Module:
    """``none`` -> identity, ``dropout`` -> per-element masks, ``spatial`` -> one mask per feature map,
    ``gaussian`` -> per-element multiplicative N(1, p/(1-p)) noise, ``maxdrop`` -> feature-wise Max-Drop (each
    feature map's largest activation dropped with probability p)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"dropout kind must be one of {list(NOISE_KINDS)}, got {kind!r}")
    return {"none": nn.Identity, "dropout": Dropout, "spatial": SpatialDropout, "gaussian": GaussianDropout,
            "maxdrop": MaxDrop}[kind](*(() if kind == "none" else (p,)))


class HeatmapNet(nn.Module):
    """Fully convolutional heat-map regressor with dropout before its first 1x1 convolution (Tompson et al. 2015, section 3.2).

    Input ``(N, 1, S, S)``, output ``(N, K, S/4, S/4)``, one heat-map per keypoint. Four
    5x5 convolutions (max-pool 2 after the first two; the fourth dilated by 2, so that an
    output pixel sees 64x64 input pixels, a whole digit) with ReLUs, then ``drop``, a 1x1 convolution to ``hidden`` maps, ReLU, and a 1x1
    convolution to K maps. ``self.drop`` is the module whose input the correlation
    diagnostic reads; for the ``none`` arm it is an identity in the same place.
    """

    def __init__(self, channels=(16, 32, 32, 64), hidden: int = 64, keypoints: int = 4, dropout: str = "none",
                 p: float = 0.5) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c0, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c0, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(),
            nn.Conv2d(c2, c3, 5, padding=4, dilation=2), nn.ReLU(),
        )
        self.drop = make_dropout(dropout, p)
        self.head = nn.Sequential(nn.Conv2d(c3, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, keypoints, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))


class ResidualBlock(nn.Module):
    """A CIFAR residual block: ``relu(shortcut(x) + main(x))`` for every image, nothing dropped.

    ``main`` is 3x3 conv (stride ``stride``), batch norm, ReLU, 3x3 conv, batch norm;
    ``shortcut`` is a 1x1 convolution (stride ``stride``, no batch norm) on every block,
    even where the width and resolution do not change.
    Shapes: input ``(N, in_channels, H, W)``, output ``(N, out_channels, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.main, self.shortcut = residual_paths(in_channels, out_channels, stride)  # as DepthDropoutBlock's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        return F.relu(out + self.main(x))


class ResNet(nn.Module):
    """A plain CIFAR ResNet of ``depth`` = 6k + 2 layers, no layer dropped.

    He, Zhang, Ren, Sun (2016), "Deep Residual Learning for Image Recognition", CVPR 2016
    (arXiv 1512.03385), section 4.2. A 3x3 convolution to 16 maps (batch norm, ReLU), three stages of k
    :class:`ResidualBlock` with 16, 32 and 64 channels (the second and third start with
    stride 2), global average pooling and a linear classifier. Every shortcut is a 1x1
    convolution (He et al.'s option C, projections everywhere), not the paper's
    parameter-free option A for CIFAR.

    ``block(in_channels, out_channels, stride)`` builds each residual block: the plain
    :class:`ResidualBlock` by default; :class:`DepthDropoutResNet` passes the depth-dropout
    block. With plain blocks it is, parameter for parameter and operation for operation,
    ``DepthDropoutResNet(depth, 0.0)``: the same parameter names, shapes and order, the same
    initialisation from the same seed, and the same outputs in train and eval mode
    (``tests/test_models.py`` checks it). The plain blocks are its own, so that a change to
    the depth-dropout method cannot silently change the models of other chapters.

    Shapes: input ``(N, 3, H, W)``, logits ``(N, num_classes)``.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10,
                 block: Callable[[int, int, int], nn.Module] = ResidualBlock) -> None:
        super().__init__()
        depth = check_positive_int(depth, "depth")
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"depth must be 6k + 2 with k >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}")
        num_classes = check_positive_int(num_classes, "num_classes")
        k = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        blocks, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for i in range(k):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        return self.head(h.mean((2, 3)))


class DepthDropoutResNet(ResNet):
    """The CIFAR :class:`ResNet` built from :class:`replib.methods.DepthDropoutBlock`: Guo & Gould (2016).

    Every block skips its main path with probability ``p`` per image; ``p = 0`` is the same
    architecture without depth dropout (1x1 shortcuts included), the fair baseline.
    Shapes: input ``(N, 3, H, W)``, logits ``(N, num_classes)``.
    """

    def __init__(self, depth: int = 20, p: float = 0.5, num_classes: int = 10) -> None:
        p = check_probability(p)
        super().__init__(depth, num_classes, block=lambda c_in, c_out, stride: DepthDropoutBlock(c_in, c_out, stride, p))
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"


def check_fast_widths(widths: Sequence[int], unit: str = "stages") -> list[int]:
    """``widths`` of the fast nets (:class:`FastCifarNet`, :class:`DepthDropoutFastNet`) as a list, or a clear error.

    One to four positive ints: their 2x2 patch stem leaves 31 pixels and each stage halves them (rounding down),
    so a fifth would have none. ``unit`` names a stage in the error ("blocks" for :class:`FastCifarNet`).
    """
    widths = [check_positive_int(w, "widths") for w in widths]
    if not 1 <= len(widths) <= 4:
        raise ValueError(f"widths must name one to four {unit} (each halves the image), got {widths!r}")
    return widths


def _patch_stem(maps: int) -> nn.Sequential:
    """The fast nets' stem: a 2x2 convolution over every 2x2 patch (no padding: 32 -> 31 pixels), GELU."""
    return nn.Sequential(nn.Conv2d(3, check_positive_int(maps, "stem"), 2, bias=False), nn.GELU())


class FastCifarNet(nn.Module):
    """A small CIFAR-10 net in the style of the public fast-training recipes (Page 2018, "How to train your
    ResNet"; Jordan 2024, "airbench"): built to reach high accuracy in few epochs, not to follow a paper.

    A 2x2 convolution over every 2x2 patch (``stem`` maps, no padding: 32 -> 31 pixels), GELU; then one block per entry of ``widths``: a 3x3 convolution, max-pool 2, batch norm, GELU, followed by
    ``depth - 1`` more 3x3 convolutions with batch norm and GELU at that resolution (31 -> 15 -> 7 -> 3 for three
    blocks); a global max-pool and a linear classifier without bias whose logits are multiplied by ``scale``
    (a fixed temperature; airbench uses 1/9). ``dropout``/``p`` place :func:`make_dropout` after every
    block (none by default). ``pool_dropout`` > 0 makes every block's pooling max-pooling dropout
    (:class:`~replib.methods.MaxPoolDropout`, Wu & Gu 2015) at that drop probability, moved after batch norm and a
    ReLU (conv, BN, ReLU, pool), the order of Wu & Gu's nets: the method's test rule is the mean of its training
    output only for non-negative inputs.

    Shapes: input ``(N, 3, 32, 32)``, logits ``(N, num_classes)``.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 64), depth: int = 2, stem: int = 24, num_classes: int = 10,
                 scale: float = 1.0, dropout: str = "none", p: float = 0.0, pool_dropout: float = 0.0) -> None:
        super().__init__()
        widths = check_fast_widths(widths, "blocks")
        pool_dropout = check_probability(pool_dropout, "pool_dropout")
        depth = check_positive_int(depth, "depth")
        self.stem = _patch_stem(stem)
        blocks, channels = [], stem
        for width in widths:
            conv = nn.Conv2d(channels, width, 3, padding=1, bias=False)
            layers = ([conv, nn.BatchNorm2d(width), nn.ReLU(), MaxPoolDropout(2, pool_dropout)] if pool_dropout > 0
                      else [conv, nn.MaxPool2d(2), nn.BatchNorm2d(width), nn.GELU()])
            for _ in range(depth - 1):
                layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.GELU()]
            blocks.append(nn.Sequential(*layers, make_dropout(dropout, p)))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, check_positive_int(num_classes, "num_classes"), bias=False)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.stem(x))
        return self.head(h.amax((2, 3))) * self.scale


class DepthDropoutFastNet(nn.Module):
    """A residual variant of :class:`FastCifarNet` whose residual blocks skip their main path per image:
    Guo & Gould (2016)'s depth dropout on a net that converges in a CPU budget.

    The fast net's 2x2 patch stem (``stem`` maps, GELU); then, per entry of ``widths``, its block opening (a 3x3
    convolution, max-pool 2, batch norm, GELU), never skipped, followed by ``blocks``
    :class:`~replib.methods.DepthDropoutBlock` of that width at the pooled resolution (main path: 3x3 convolution,
    batch norm, ReLU, 3x3 convolution, batch norm; a 1x1 convolution on the shortcut), each skipping its main path
    for an image with probability ``p`` in training; a global max-pool and a linear classifier without bias.
    With ``blocks = 1`` each stage has the three 3x3 convolutions of ``FastCifarNet(widths, depth=3)``, the last
    two wrapped in a residual block. ``p = 0`` is the same net without depth dropout, the fair baseline.

    Shapes: input ``(N, 3, 32, 32)``, logits ``(N, num_classes)``.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 64), blocks: int = 1, p: float = 0.5, stem: int = 24,
                 num_classes: int = 10) -> None:
        super().__init__()
        widths, blocks = check_fast_widths(widths), check_positive_int(blocks, "blocks")
        self.p = check_probability(p)
        self.stem = _patch_stem(stem)
        stages, channels = [], stem
        for width in widths:
            stages.append(nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(width), nn.GELU(),
                *(DepthDropoutBlock(width, width, 1, self.p) for _ in range(blocks))))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(channels, check_positive_int(num_classes, "num_classes"), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).amax((2, 3)))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class FlipAveraged(nn.Module):
    """Test-time flip averaging: the mean of ``model``'s logits for each image and its mirror image.

    For evaluation only (in training it is ``model`` applied twice). Shapes as ``model``'s, input ``(N, C, H, W)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.model(x) + self.model(x.flip(3)))
