"""The model registry: ``create_model(name, num_classes, **kwargs)``; torchvision models as ``tv:NAME``.

Every model family registers its names where it is defined (``register_model`` at the bottom of
its file, as timm does); importing this package imports every family.
"""

from __future__ import annotations

from slimlab.models import convnet, efficientnet, mobilenet, nin, preact_resnet, probe, resnet_cifar, vgg  # noqa: F401
from slimlab.models.registry import create_model, get_entry, list_models, register_model, reset_classifier

__all__ = ["create_model", "list_models", "register_model", "get_entry", "reset_classifier"]
