import json

import pytest
import torch

from srgan.weights import WeightsError, load_generator, resolve_weights
from tests.conftest import tiny_generator


def test_round_trip(tiny_weights):
    net, manifest = load_generator("srgan_x2", tiny_weights, scale=2)
    ref = tiny_generator(2)
    x = torch.rand(1, 1, 8, 8)
    assert torch.allclose(net(x), ref(x))
    assert manifest["text_height"] == 9.0 and len(manifest["sha256"]) == 64
    assert resolve_weights("auto", tiny_weights, 4).name == "srgan_x4.pt"


def test_sha_mismatch_is_one_line(tiny_weights):
    pt = tiny_weights / "srgan_x2.pt"
    pt.write_bytes(pt.read_bytes() + b"x")
    with pytest.raises(WeightsError, match="sha256 mismatch") as exc:
        load_generator("srgan_x2", tiny_weights, scale=2)
    assert "\n" not in str(exc.value)


def test_wrong_scale_and_architecture_refused(tiny_weights):
    with pytest.raises(WeightsError, match="scale 4, not 2"):
        load_generator(tiny_weights / "srgan_x4.pt", tiny_weights, scale=2)
    man = tiny_weights / "srgan_x2.json"
    data = json.loads(man.read_text())
    data["spec"]["num_block"] = 3
    man.write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="does not fit"):
        load_generator("srgan_x2", tiny_weights, scale=2)


def test_unknown_name(tiny_weights):
    with pytest.raises(WeightsError, match="no weights named"):
        load_generator("nope", tiny_weights)
