import pytest
import torch

from slimlab.errors import SlimlabError
from slimlab.models import create_model, list_models
from slimlab.models.io import model_from_checkpoint, resize_to_state_dict
from slimlab.profile import count_params


@pytest.mark.parametrize("name,published_m", [("resnet20", 0.27), ("resnet32", 0.46), ("resnet44", 0.66),
                                              ("resnet56", 0.85), ("resnet110", 1.7)])
def test_cifar_resnet_params_match_he_et_al(name, published_m):
    # He et al. 2016, Table 6 (option A shortcuts), rounded to the paper's precision
    n = count_params(create_model(name, 10))
    assert round(n / 1e6, 2 if published_m < 1 else 1) == published_m


def test_exact_counts_and_forward_shapes():
    assert count_params(create_model("resnet20")) == 269722
    assert count_params(create_model("vgg16")) == 14724042  # 13 convs + BN + one linear
    for name in ("resnet20", "preact_resnet32", "vgg16", "convnet", "nin4"):
        m = create_model(name, 7).eval()
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 7), name


def test_torchvision_models_by_name():
    import torchvision

    m = create_model("tv:resnet18", 10)
    assert count_params(m) == count_params(torchvision.models.resnet18(num_classes=10))
    with pytest.raises(SlimlabError, match="unknown torchvision"):
        create_model("tv:nosuchnet")


def test_registry_errors():
    with pytest.raises(SlimlabError, match="unknown model"):
        create_model("resnet21")
    with pytest.raises(SlimlabError, match="does not take"):
        create_model("resnet20", 10, bogus=1)
    assert "resnet56" in list_models() and "efficientnet_b0" in list_models()


def test_resize_to_state_dict_rebuilds_smaller_model():
    small = create_model("convnet", 10, width=8)
    big = create_model("convnet", 10, width=16)
    resize_to_state_dict(big, small.state_dict())
    big.load_state_dict(small.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(big.eval()(x), small.eval()(x))
    ck = {"model_name": "convnet", "model_kwargs": {"width": 16}, "num_classes": 10, "pruned": True,
          "state_dict": small.state_dict()}
    assert torch.allclose(model_from_checkpoint(ck).eval()(x), small(x))
