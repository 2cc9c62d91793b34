import pytest
import torch

from srgan.models import Discriminator, Generator, discriminator_depth


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_shapes(scale, channels):
    net = Generator(scale=scale, num_feat=4, num_block=2, in_channels=channels)
    y = net(torch.rand(2, channels, 12, 10))
    assert y.shape == (2, channels, 12 * scale, 10 * scale)
    assert len(net.upsample) == {2: 1, 4: 2, 8: 3}[scale]


def test_generator_rejects_scale():
    with pytest.raises(ValueError, match="scale"):
        Generator(scale=3)


@pytest.mark.parametrize("scale,depth", [(2, 3), (4, 4), (8, 5)])
def test_discriminator_halves_and_doubles(scale, depth):
    assert discriminator_depth(96, scale) == depth
    d = Discriminator(crop=96, scale=scale, num_feat=8)
    assert d(torch.rand(2, 1, 96, 96)).shape == (2, 1)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    strided = [m for m in convs if m.stride == (2, 2)]
    assert len(strided) == depth
    outs = [m.out_channels for m in convs[2::2]]
    assert outs == [min(8 * 2 ** (i + 1), 512) for i in range(depth)]


def test_discriminator_small_crop():
    d = Discriminator(crop=24, scale=8, num_feat=4)
    assert d.depth == 3
    assert d(torch.rand(1, 1, 24, 24)).shape == (1, 1)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_lr_shuffle_runs_every_convolution_at_the_input_resolution(scale):
    from srgan.inference.fold import fold_generator

    net = Generator(scale, num_feat=4, num_block=1, skip="bicubic", arch="lr_shuffle")
    seen = []
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[-2:])))
    x = torch.rand(2, 1, 12, 10)
    out = net(x)  # (N, C, 12, 10) -> (N, C, 12s, 10s); the tail starts at zero: bicubic exactly
    assert out.shape == (2, 1, 12 * scale, 10 * scale)
    assert set(seen) == {(12, 10)}
    assert net.tail.out_channels == scale * scale
    bicubic = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    assert torch.allclose(out, bicubic)
    assert fold_generator(net) is net  # nothing at the output resolution to fold


def test_spec_keeps_older_manifests_equal_and_rebuilds_the_arch():
    old = Generator(2, num_feat=4, num_block=1).spec.to_dict()
    assert "arch" not in old  # manifests and checkpoints written before the key compare equal
    new = Generator(2, num_feat=4, num_block=1, arch="lr_shuffle")
    assert new.spec.to_dict()["arch"] == "lr_shuffle"
    rebuilt = Generator.from_spec(new.spec.to_dict())
    assert rebuilt.spec == new.spec and rebuilt.head[0].kernel_size == (3, 3)
    with pytest.raises(ValueError, match="arch"):
        Generator(2, arch="espcn")
