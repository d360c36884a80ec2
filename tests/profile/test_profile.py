import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from slimlab.models import create_model
from slimlab.profile import count_macs, measure_latency, profile_model


def test_conv_macs_by_hand():
    # C_out * H_out * W_out * (C_in / groups) * k * k
    m = nn.Conv2d(8, 16, 3, stride=2, padding=1)
    assert count_macs(m, 32, in_chans=8) == 16 * 16 * 16 * 8 * 9


def test_depthwise_and_grouped_macs_by_hand():
    dw = nn.Conv2d(12, 12, 3, padding=1, groups=12)
    assert count_macs(dw, 10, in_chans=12) == 12 * 10 * 10 * 1 * 9
    gc = nn.Conv2d(12, 24, 1, groups=3)
    assert count_macs(gc, 10, in_chans=12) == 24 * 10 * 10 * 4


def test_linear_macs_by_hand():
    m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    assert count_macs(m, 4) == 48 * 10


def test_macs_agree_with_torch_flop_counter():
    for name in ("resnet20", "mobilenet_v2", "vgg16"):
        m = create_model(name, 10).eval()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            m(torch.zeros(1, 3, 32, 32))
        assert fc.get_total_flops() == 2 * count_macs(m, 32), name


def test_latency_reports_median_and_threads():
    m = create_model("convnet", 10, width=8)
    r = measure_latency(m, 32, batch=2, warmup=1, iters=5, threads=1)
    assert r["threads"] == 1 and r["iters"] >= 5 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
    p = profile_model(m, 32, batches=(1, 4), iters=3)
    assert [x["batch"] for x in p["latency"]] == [1, 4] and p["params"] > 0
