"""The model registry: ``create_model(name, num_classes, **kwargs)``; torchvision models as ``tv:NAME``."""

from __future__ import annotations

from functools import partial

from slimlab.models.convnet import convnet
from slimlab.models.efficientnet import efficientnet
from slimlab.models.mobilenet import mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small
from slimlab.models.nin import nin
from slimlab.models.preact_resnet import preact_resnet
from slimlab.models.registry import create_model, get_entry, list_models, register_model
from slimlab.models.resnet_cifar import cifar_resnet
from slimlab.models.vgg import vgg16_bn
from slimlab.scaling.compound import EFFICIENTNET

__all__ = ["create_model", "list_models", "register_model", "get_entry"]

for _d in (20, 32, 44, 56, 110):
    register_model(f"resnet{_d}", partial(cifar_resnet, _d), family="resnet_cifar",
                   doc=f"CIFAR ResNet-{_d} (He et al. 2016), option-A shortcuts")
register_model("preact_resnet32", partial(preact_resnet, 32), family="resnet_cifar",
               doc="PreAct ResNet-32 (He et al. 2016b), PENCIL's CIFAR backbone")
register_model("convnet", convnet, family="plain", doc="a small plain CNN for tests and quick CPU runs")
register_model("vgg16", vgg16_bn, family="vgg", doc="VGG-16 with BN for 32x32 inputs")
register_model("mobilenet_v1", mobilenet_v1, family="mobilenet", input_size=224,
               doc="MobileNetV1 (Howard et al. 2017); width_mult = alpha")
register_model("mobilenet_v2", mobilenet_v2, family="mobilenet", input_size=224,
               doc="MobileNetV2 (Sandler et al. 2018)")
register_model("mobilenet_v3_large", mobilenet_v3_large, family="mobilenet", input_size=224,
               doc="MobileNetV3-Large (Howard et al. 2019)")
register_model("mobilenet_v3_small", mobilenet_v3_small, family="mobilenet", input_size=224,
               doc="MobileNetV3-Small (Howard et al. 2019)")
for _name, (_w, _dm, _res, _drop) in EFFICIENTNET.items():
    register_model(_name, efficientnet, family="efficientnet", input_size=_res, width_mult=_w, depth_mult=_dm,
                   dropout=_drop, doc=f"EfficientNet-{_name[-2:].upper()} (Tan & Le 2019): w={_w} d={_dm} r={_res}")
for _b in (3, 4, 5):
    register_model(f"nin{_b}", partial(nin, num_blocks=_b), family="nin",
                   doc=f"Network-in-Network with {_b} blocks (RotNet's trunk)")


def _probe(num_classes: int = 10, **kwargs):
    """A classifier on one block of a frozen (RotNet) trunk."""
    from slimlab.ssl.probe import probe

    return probe(num_classes, **kwargs)


register_model("probe", _probe, family="probe", doc="a classifier on one block of a frozen trunk (slimlab probe)")
