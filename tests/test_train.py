import csv
import json

import numpy as np
import pytest
import torch

import srgan.sample
from srgan.config import PipelineConfig, override, to_dict
from srgan.models import Discriminator, Generator
from srgan.training.checkpoint import load_checkpoint, restore_module, save_checkpoint
from srgan.training.data import (
    INK_LEVEL,
    MIN_INK,
    CropDataset,
    ink_points,
    make_loader,
    normalise_factor,
    prepare_pages,
    random_crop,
    split_pages,
)
from srgan.training.train import (
    GanLosses,
    ModelEMA,
    content_loss_for,
    gan_step,
    main,
    pretrain_step,
    scheduled_lr,
    train,
)
from srgan.weights import save_weights, sha256_of
from tests.conftest import REPO, text_like_page


def tiny_cfg(**training) -> PipelineConfig:
    """Tiny networks, small crops, a few steps, 3 small synthetic pages, no workers."""
    values = dict(num_feat=4, num_block=1, crop=24, batch_size=2, pretrain_steps=3, gan_steps=0, workers=0,
                  synthetic_pages=3, save_every=2, eval_every=2, text_height=4.5, eval_fraction=0.34,
                  synthetic_max_side=300, x_height_max=5.0)
    values.update(training)
    cfg = PipelineConfig()
    for key, value in values.items():
        cfg = override(cfg, f"training.{key}", value)
    return override(cfg, "engine.device", "cpu")


@pytest.fixture(autouse=True)
def small_world(monkeypatch, tmp_path):
    """100-dpi synthetic pages (fast to evaluate) and an empty TORCH_HOME (random VGG, no download)."""
    original = srgan.sample.synthetic_page
    monkeypatch.setattr(srgan.sample, "synthetic_page", lambda seed, dpi=100: original(seed, dpi=dpi))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def assert_state_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a.cpu(), b.cpu())
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_state_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_state_equal(x, y)
    else:
        assert a == b


# ----------------------------------------------------------------------------------------- training


def test_scheduled_lr_cosine_falls_from_base_to_min():
    assert scheduled_lr(2e-4, 1e-6, "constant", 0.7) == 2e-4
    lrs = [scheduled_lr(2e-4, 1e-6, "cosine", p / 10) for p in range(11)]
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] == pytest.approx(1e-6)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))
    assert scheduled_lr(2e-4, 1e-6, "cosine", 1.5) == pytest.approx(1e-6)  # past the budget: stays at the floor


def test_cosine_schedule_reaches_lr_min_and_is_logged(tmp_path):
    cfg = tiny_cfg(pretrain_steps=5, lr_schedule="cosine", lr_min=1e-5, eval_every=1, save_every=0)
    train(cfg, [], tmp_path / "run", device="cpu", promote=False)
    rows = list(csv.DictReader((tmp_path / "run" / "losses.csv").open()))
    lrs = [float(r["lr"]) for r in rows]
    assert len(lrs) == 5 and lrs[0] == pytest.approx(2e-4) and lrs[-1] == pytest.approx(1e-5)
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_lr_schedule_is_checked():
    with pytest.raises(Exception, match="training.lr_schedule"):
        tiny_cfg(lr_schedule="linear").validate()


def test_both_stages_on_cpu(tmp_path):
    cfg = tiny_cfg(pretrain_steps=3, gan_steps=2, content_layers="conv1_2,conv2_2:0.5")
    out, wdir = tmp_path / "run", tmp_path / "weights"
    result = train(cfg, [], out, device="cpu", weights_dir=wdir)
    assert result.steps == 5 and result.stage == "srgan"
    assert (out / "checkpoint.pt").exists() and (out / "losses.png").stat().st_size > 1000
    assert not (out / ".work").exists()  # page copies are removed at the end
    rows = list(csv.DictReader((out / "losses.csv").open()))
    assert {r["stage"] for r in rows} == {"srresnet", "srgan"}
    assert rows[-1]["step"] == "5" and rows[-1]["val_psnr"] and rows[-1]["content"] and rows[-1]["d_fake"]
    # no current weights: the new ones are promoted, with a full manifest
    assert result.promoted and result.promoted_to == wdir / "srgan_x2.pt"
    assert result.new_weights == out / "srgan_x2.pt"
    manifest = json.loads((wdir / "srgan_x2.json").read_text())
    # the content loss is CRAFT's text-trained backbone, named with its file's sha256 and the layers used
    content = manifest["content_loss"]
    assert content == result.content_loss and content["network"] == "craft_vgg16_bn"
    assert content["file"] == "craft_mlt_25k.pth" and len(content["sha256"]) == 64
    assert content["layers"] == {"conv1_2": 1.0, "conv2_2": 0.5}
    assert manifest["stage2_weights"] == {"pixel": 1.0, "content": 1.0, "adversarial": 1e-3, "disc_feat": 64}
    assert manifest["stage"] == "srgan" and manifest["steps"] == 5
    assert manifest["text_height"] is None  # trained on spread text sizes (training.normalise off)
    assert manifest["trained_on"]["synthetic_pages"] == 2 and len(manifest["trained_on"]["held_out_pages"]) == 1
    assert manifest["evaluation"]["pages"] == 1 and "mean_gain_db" in manifest["evaluation"]
    assert manifest["batch"] == 2 and manifest["crop"] == 24 and manifest["machine"] and manifest["date"]
    assert result.eval.mean_psnr == pytest.approx(manifest["evaluation"]["mean_psnr"], abs=1e-3)


def test_resume_restores_step_and_optimiser_state(tmp_path):
    # unit round trip: the optimiser comes back exactly
    torch.manual_seed(0)
    net_g, net_d = Generator(2, 4, 1), Discriminator(24, 2, num_feat=4)
    opt_g, opt_d = torch.optim.Adam(net_g.parameters()), torch.optim.Adam(net_d.parameters())
    ema = ModelEMA(net_g, 0.9)
    for _ in range(2):
        pretrain_step(net_g, opt_g, torch.rand(2, 1, 12, 12), torch.rand(2, 1, 24, 24), _null, ema)
    path = save_checkpoint(tmp_path / "c.pt", net_g=net_g, opt_g=opt_g, step=2, stage="srresnet", stage_step=2,
                           config={"a": 1}, net_d=net_d, opt_d=opt_d, ema_g=ema.module, ema_updates=2)
    ckpt = load_checkpoint(path)
    net2 = Generator(2, 4, 1)
    opt2 = torch.optim.Adam(net2.parameters())
    restore_module(net2, ckpt["net_g"], "generator")
    opt2.load_state_dict(ckpt["opt_g"])
    assert ckpt["step"] == 2 and ckpt["stage_step"] == 2
    assert_state_equal(opt2.state_dict(), opt_g.state_dict())
    assert_state_equal(net2.state_dict(), net_g.state_dict())

    # through train(): stop after 2 of 4 steps, resume, finish at step 4
    out = tmp_path / "run"
    train(tiny_cfg(pretrain_steps=2), [], out, device="cpu", promote=False)
    first = load_checkpoint(out / "checkpoint.pt")
    assert first["step"] == 2
    saved_opt = first["opt_g"]
    result = train(tiny_cfg(pretrain_steps=4), [], out, resume=out / "checkpoint.pt", device="cpu", promote=False)
    assert result.steps == 4
    steps = [int(r["step"]) for r in csv.DictReader((out / "losses.csv").open())]
    assert steps == sorted(steps) and steps[-1] == 4 and 2 in steps  # history carried over
    # resuming at the end of stage 1 goes straight on to stage 2, with step counts intact
    again = load_checkpoint(out / "checkpoint.pt")
    net3 = Generator(2, 4, 1)
    opt3 = torch.optim.Adam(net3.parameters(), lr=2e-4, betas=(0.9, 0.99))
    opt3.load_state_dict(again["opt_g"])
    assert int(opt3.state_dict()["state"][0]["step"]) == 4 > int(saved_opt["state"][0]["step"])


def _null():
    import contextlib

    return contextlib.nullcontext()


def test_gan_step_returns_named_losses_and_freezes_nothing():
    torch.manual_seed(0)
    from srgan.training.losses import GANLoss, TextContentLoss

    net_g, net_d = Generator(2, 4, 1), Discriminator(24, 2, num_feat=4)
    opt_g, opt_d = torch.optim.Adam(net_g.parameters()), torch.optim.Adam(net_d.parameters())
    before = [p.clone() for p in net_d.parameters()]
    objective = GanLosses(1.0, TextContentLoss({"conv1_2": 1.0}), GANLoss(1e-3))
    losses = gan_step(net_g, net_d, opt_g, opt_d, objective,
                      torch.rand(2, 1, 12, 12), torch.rand(2, 1, 24, 24), _null, None)
    assert set(losses) == {"l1", "content", "adversarial", "d_real", "d_fake"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in losses.values())
    assert all(p.requires_grad for p in net_d.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, net_d.parameters(), strict=True))


def test_gan_step_without_adversarial_trains_no_discriminator():
    """adv_weight 0 (the content-only variant): no discriminator, no D losses, G still moves."""
    torch.manual_seed(0)
    from srgan.training.losses import TextContentLoss

    net_g = Generator(2, 4, 1)
    opt_g = torch.optim.Adam(net_g.parameters())
    before = [p.clone() for p in net_g.parameters()]
    losses = gan_step(net_g, None, opt_g, None, GanLosses(0.0, TextContentLoss({"conv1_2": 1.0}), None),
                      torch.rand(2, 1, 12, 12), torch.rand(2, 1, 24, 24), _null, None)
    assert set(losses) == {"l1", "content", "adversarial"} and losses["adversarial"] == 0.0 and losses["content"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, net_g.parameters(), strict=True))


def test_random_vgg19_is_never_a_content_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached ImageNet file
    cfg = tiny_cfg(content_features="vgg19", vgg_layer="relu1_1")
    with pytest.raises(ValueError, match="random features are never a content loss"):
        content_loss_for(cfg.training)
    loss, info = content_loss_for(tiny_cfg(content_features="none").training)
    assert loss is None and info is None


def test_ema_follows_with_warm_up():
    torch.manual_seed(0)
    net = Generator(2, 4, 1)
    ema = ModelEMA(net, decay=0.999)
    start = [p.clone() for p in net.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)  # warm-up decay min(0.999, 2 / 11)
    d = 2 / 11
    for e, s0, p in zip(ema.module.parameters(), start, net.parameters(), strict=True):
        assert torch.allclose(e, d * s0 + (1 - d) * p, atol=1e-6)
    assert not any(p.requires_grad for p in ema.module.parameters())


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_discriminator_output_shape(scale):
    crop = 48
    net_d = Discriminator(crop, scale, num_feat=4)
    assert net_d(torch.rand(3, 1, crop, crop)).shape == (3, 1)


@torch.no_grad()
def nearest_generator() -> Generator:
    """A 2x generator that upsamples by pixel replication: far better than a 2-step model."""
    net = Generator(2, 4, 1)
    for p in net.parameters():
        p.zero_()
    net.head[0].weight[0, 0, 4, 4] = 1.0
    net.head[1].weight.fill_(1.0)  # PReLU with slope 1: identity
    stage = net.upsample[0]
    stage.conv.weight[0:4, 0, 1, 1] = 1.0  # channel 0 copied to its 4 sub-pixels
    stage.act.weight.fill_(1.0)
    net.tail.weight[0, 0, 4, 4] = 1.0
    return net


def test_nearest_generator_is_pixel_replication():
    x = torch.rand(1, 1, 6, 5)
    assert torch.allclose(nearest_generator()(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3), atol=1e-6)


def test_promotion_keeps_better_current_weights(tmp_path):
    wdir = tmp_path / "weights"
    wdir.mkdir()
    save_weights(nearest_generator(), wdir, "srgan_x2", {"text_height": 4.5})
    before = sha256_of(wdir / "srgan_x2.pt")
    # skip="none": a 2-step network without the bicubic skip is far worse than the current weights
    result = train(tiny_cfg(pretrain_steps=2, skip="none"), [], tmp_path / "run", device="cpu", weights_dir=wdir)
    assert not result.promoted and "kept" in result.reason
    assert result.previous_eval.mean_psnr > result.eval.mean_psnr
    assert sha256_of(wdir / "srgan_x2.pt") == before
    assert result.new_weights.exists() and result.new_weights.parent == tmp_path / "run"


def test_main_prints_summary(tmp_path, capsys):
    code = main(["--pretrain-steps", "100000", "--max-seconds", "1", "--num-feat", "4", "--num-block", "1",
                 "--crop", "24", "--batch-size", "2", "--synthetic-pages", "2", "--workers", "0", "--device", "cpu",
                 "--text-height", "4.5", "--synthetic-max-side", "300", "--x-height-max", "5",
                 "--out", str(tmp_path / "run"), "--weights-dir", str(tmp_path / "w"),
                 "--no-promote"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["promoted"] is False and 1 <= summary["steps"] < 100000  # stopped by --max-seconds
    last = list(csv.DictReader((tmp_path / "run" / "losses.csv").open()))[-1]
    assert int(last["step"]) == summary["steps"] and last["val_psnr"]
    assert not (tmp_path / "w").exists()
    assert main(["--crop", "25", "--out", str(tmp_path / "bad")]) == 2  # one-line config error


# --------------------------------------------------------------------------------------------- data


def test_split_is_deterministic_and_disjoint():
    names = [f"doc{i:02d}" for i in range(10)]
    train_a, eval_a = split_pages(names, 0.2, seed=0)
    train_b, eval_b = split_pages(list(reversed(names)), 0.2, seed=0)
    assert (train_a, eval_a) == (train_b, eval_b)
    assert len(eval_a) == 2 and not set(train_a) & set(eval_a) and set(train_a) | set(eval_a) == set(names)
    assert split_pages(names, 0.0, seed=0) == (sorted(names), [])
    assert len(split_pages(names[:2], 0.1, seed=0)[1]) == 1  # at least one held out


def test_normalise_factor_policy():
    assert normalise_factor(None, 9.0, 2) == 1.0
    assert normalise_factor(18.5, 9.0, 2) == 1.0  # within 0.9-1.1
    assert normalise_factor(27.0, 9.0, 2) == pytest.approx(2 / 3)
    assert normalise_factor(200.0, 9.0, 2) == 0.25
    assert normalise_factor(4.0, 9.0, 2) == 1.5


def test_eval_pages_never_trained_on(tmp_path):
    from PIL import Image

    src = tmp_path / "scans"
    src.mkdir()
    for i in range(5):
        Image.fromarray(text_like_page(120, 100, seed=i)).save(src / f"p{i}.png")
    held = tmp_path / "held"
    held.mkdir()
    Image.fromarray(text_like_page(120, 100, seed=9)).save(held / "h.png")
    cfg = tiny_cfg(synthetic_pages=1, eval_fraction=0.4)
    sets = prepare_pages([str(src)], cfg, tmp_path / "work")
    train_names, eval_names = {p.name for p in sets.train}, {p.name for p in sets.eval}
    assert len(eval_names) == 2 and not train_names & eval_names and "synthetic/0000" in train_names
    assert all(p.original is not None for p in sets.eval)
    assert [n for n, _ in sets.eval_originals()] == [p.name for p in sets.eval]
    explicit = prepare_pages([str(src)], cfg, tmp_path / "work2", eval_data=[str(held)])
    assert [p.name for p in explicit.eval] == ["h"] and len(explicit.train) == 6


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("degradation", ["bicubic", "scan"])
def test_crops_contain_ink_and_lr_is_hr_over_scale(tmp_path, scale, degradation):
    cfg = tiny_cfg(synthetic_pages=2, eval_fraction=0.0, scale=scale, crop=48)
    sets = prepare_pages([], cfg, tmp_path / "work")
    loader = make_loader(CropDataset(sets.train, 48, scale, degradation, seed=0), batch_size=4, workers=0,
                         pin_memory=False)
    batches = iter(loader)
    for _ in range(3):
        lq, gt = next(batches)
        assert lq.shape == (4, 1, 48 // scale, 48 // scale) and gt.shape == (4, 1, 48, 48)
        assert lq.dtype == gt.dtype == torch.float32
        assert 0 <= float(gt.min()) and float(gt.max()) <= 1
        ink = (gt * 255 < INK_LEVEL).float().flatten(1).mean(1)
        assert bool((ink >= MIN_INK).all())


def test_sparse_page_crops_find_the_text():
    page = np.full((1000, 1000), 255, dtype=np.uint8)
    page[700:760, 300:380] = text_like_page(60, 80)  # one small text block on an empty page
    rng = np.random.default_rng(0)
    points = ink_points(page)
    assert len(points) and (page[points[:, 0], points[:, 1]] < INK_LEVEL).all()
    assert all((random_crop(page, 48, rng, points) < INK_LEVEL).mean() >= MIN_INK for _ in range(50))
    small = random_crop(page[:30, :20], 48, rng)  # smaller than the crop: padded with paper
    assert small.shape == (48, 48)


def test_loader_with_a_worker(tmp_path):
    sets = prepare_pages([], tiny_cfg(synthetic_pages=1, eval_fraction=0.0), tmp_path / "work")
    loader = make_loader(CropDataset(sets.train, 24, 2), batch_size=2, workers=1, pin_memory=False)
    lq, gt = next(iter(loader))
    assert lq.shape == (2, 1, 12, 12) and gt.shape == (2, 1, 24, 24)


def test_flow_is_named_train():
    pytest.importorskip("prefect")
    from flows.train import train as train_flow

    assert train_flow.name == "train"


def test_init_weights_starts_from_shipped_weights_and_records_them(tmp_path):
    wdir = tmp_path / "weights"
    first = train(tiny_cfg(pretrain_steps=2), [], tmp_path / "a", device="cpu", weights_dir=wdir)
    assert first.promoted
    shipped = json.loads((wdir / "srgan_x2.json").read_text())
    # zero steps from the shipped weights: the new generator is exactly the shipped one
    again = train(tiny_cfg(pretrain_steps=0), [], tmp_path / "b", device="cpu", weights_dir=wdir,
                  init_weights="srgan_x2", promote=False)
    start = torch.load(tmp_path / "b" / "srgan_x2.pt", weights_only=True)
    assert_state_equal(start, torch.load(wdir / "srgan_x2.pt", weights_only=True))
    manifest = json.loads((tmp_path / "b" / "srgan_x2.json").read_text())
    init = manifest["initialised_from"]
    assert init["sha256"] == shipped["sha256"] and init["steps"] == 2 == init["steps_total"]
    assert again.eval.mean_psnr == pytest.approx(shipped["evaluation"]["mean_psnr"], abs=1e-3)
    # a chain adds up; a scratch run records none
    third = train(tiny_cfg(pretrain_steps=1), [], tmp_path / "c", device="cpu", weights_dir=wdir,
                  init_weights=tmp_path / "b" / "srgan_x2.pt", promote=False)
    assert third.steps == 1
    assert json.loads((tmp_path / "c" / "srgan_x2.json").read_text())["initialised_from"]["steps_total"] == 2
    assert shipped["initialised_from"] is None


def test_init_weights_of_another_architecture_is_refused(tmp_path):
    wdir = tmp_path / "weights"
    train(tiny_cfg(pretrain_steps=1), [], tmp_path / "a", device="cpu", weights_dir=wdir)
    with pytest.raises(ValueError, match="init_weights: .* generator, the config asks for"):
        train(tiny_cfg(pretrain_steps=1, num_feat=8), [], tmp_path / "b", device="cpu", weights_dir=wdir,
              init_weights="srgan_x2")
    with pytest.raises(ValueError, match="either resume"):
        train(tiny_cfg(), [], tmp_path / "c", device="cpu", resume=tmp_path / "a" / "checkpoint.pt",
              init_weights="srgan_x2")


# ------------------------------------------------------------------------------- repository checkpoint


def test_repository_checkpoint_has_g_optimiser_ema_and_no_discriminator(tmp_path):
    torch.manual_seed(0)
    net_g, net_d = Generator(8, 4, 1), Discriminator(48, 8, num_feat=4)  # scale 8: G and D build for it
    opt_g, opt_d = torch.optim.Adam(net_g.parameters()), torch.optim.Adam(net_d.parameters())
    ema = ModelEMA(net_g, 0.9)
    for _ in range(2):
        pretrain_step(net_g, opt_g, torch.rand(2, 1, 6, 6), torch.rand(2, 1, 48, 48), _null, ema)
    common = dict(net_g=net_g, opt_g=opt_g, step=2, stage="srgan", stage_step=2, config={}, net_d=net_d,
                  opt_d=opt_d, ema_g=ema.module, ema_updates=2)
    full = save_checkpoint(tmp_path / "full.pt", **common)
    repo = save_checkpoint(tmp_path / "repo" / "checkpoint.pt", kind="repository", **common)
    ckpt = load_checkpoint(repo)
    assert ckpt["kind"] == "repository" and ckpt["net_d"] is None and ckpt["opt_d"] is None
    assert ckpt["ema_g"] is not None and ckpt["ema_updates"] == 2 and ckpt["net_g"] is not None
    moments = ckpt["opt_g"]["state"][0]
    assert moments["exp_avg"].dtype == torch.bfloat16 and moments["exp_avg_sq"].dtype == torch.bfloat16
    assert repo.stat().st_size < full.stat().st_size
    opt2 = torch.optim.Adam(Generator(8, 4, 1).parameters())
    opt2.load_state_dict(ckpt["opt_g"])  # Adam casts the moments back to the parameters' fp32
    back = opt2.state_dict()["state"][0]
    assert back["exp_avg"].dtype == torch.float32
    assert torch.allclose(back["exp_avg"], opt_g.state_dict()["state"][0]["exp_avg"], rtol=1e-2, atol=1e-6)
    with pytest.raises(ValueError, match="kind"):
        save_checkpoint(tmp_path / "x.pt", kind="half", **common)


def test_training_resumes_from_the_repository_checkpoint(tmp_path):
    keep = tmp_path / "weights" / "checkpoints" / "srgan_x2"
    train(tiny_cfg(pretrain_steps=2), [], tmp_path / "a", device="cpu", promote=False, keep_checkpoint=keep)
    first = load_checkpoint(keep / "checkpoint.pt")
    assert first["kind"] == "repository" and first["step"] == 2 and first["net_d"] is None
    assert first["ema_updates"] == 2
    # a new session: another run folder, resumed from the kept checkpoint only
    result = train(tiny_cfg(pretrain_steps=4), [], tmp_path / "b", resume=keep / "checkpoint.pt", device="cpu",
                   promote=False, keep_checkpoint=keep)
    assert result.steps == 4
    again = load_checkpoint(keep / "checkpoint.pt")
    assert again["step"] == 4 and again["ema_updates"] == 4
    assert int(again["opt_g"]["state"][0]["step"]) == 4  # the optimiser went on, not restarted
    assert not torch.equal(again["ema_g"]["tail.weight"], first["ema_g"]["tail.weight"])


# ------------------------------------------------------------------------------------ data breadth


def test_manifest_records_families_sizes_and_degradations(tmp_path):
    from srgan.training.fonts import held_out_families, training_families

    if not training_families() or not held_out_families():
        pytest.skip("the font packages of the Makefile's system target are not installed")
    cfg = tiny_cfg(pretrain_steps=1, synthetic_pages=4, held_out_family_pages=1, x_height_min=3.0,
                   x_height_max=5.0)
    result = train(cfg, [], tmp_path / "run", device="cpu", weights_dir=tmp_path / "w", promote=False)
    trained = json.loads(result.new_weights.with_suffix(".json").read_text())["trained_on"]
    training_names = {f.name for f in training_families()}
    assert trained["families"] and set(trained["families"]) <= training_names
    assert set(trained["held_out_families"]) == {f.name for f in held_out_families()}
    assert not set(trained["families"]) & set(trained["held_out_families"])
    assert set(trained["evaluation_families"]) & set(trained["held_out_families"])  # the held-out page
    assert trained["degradations"] == {"bicubic": 0.3, "scan": 0.2, "rvl": 0.5} and trained["normalised"] is False
    sizes = trained["x_height_lr"]
    assert sizes["synthetic_range"] == [3.0, 5.0] and len(sizes["pages"]) == 3  # 4 synthetic, 1 held out
    assert 2.9 <= sizes["min"] <= sizes["max"] <= 5.2
    assert trained["layouts"] and trained["real_pages"] == []


def test_shipped_manifests_record_their_start_as_training_does():
    """A shipped manifest says where its training began the way init_generator writes it (a dict
    with steps_total, or null), so that --init-weights can go on from any shipped weights."""
    manifests = [p for p in (REPO / "weights").glob("*.json") if (p.with_suffix(".pt")).exists()]
    assert manifests
    for path in manifests:
        init = json.loads(path.read_text()).get("initialised_from")
        assert init is None or isinstance(init.get("steps_total"), int), path.name


def test_export_writes_the_checkpoints_ema_as_weights(tmp_path):
    """A run judged before it ends: the EMA generator of a checkpoint becomes loadable weights with a manifest."""
    from srgan.training.export import main as export_main
    from srgan.weights import load_generator

    torch.manual_seed(0)
    net_g, ema_g = Generator(2, 4, 1), Generator(2, 4, 1)
    opt_g = torch.optim.Adam(net_g.parameters())
    cfg = tiny_cfg(gan_steps=5, content_layers="conv2_2")
    ckpt = save_checkpoint(tmp_path / "ck" / "checkpoint.pt", net_g=net_g, opt_g=opt_g, step=8, stage="srgan",
                           stage_step=5, config=to_dict(cfg), ema_g=ema_g, ema_updates=5, kind="repository")
    assert export_main([str(ckpt), "--name", "cand", "--out", str(tmp_path / "w")]) == 0
    loaded, manifest = load_generator(tmp_path / "w" / "cand.pt", tmp_path / "w", 2)
    for a, b in zip(loaded.state_dict().values(), ema_g.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the EMA, not the raw generator
    assert manifest["stage"] == "srgan" and manifest["steps"] == 8 and manifest["exported_from"]["ema"]
    assert manifest["content_loss"]["network"] == "craft" and manifest["content_loss"]["layers"] == "conv2_2"
    assert manifest["exported_from"]["sha256"] == sha256_of(ckpt)
    assert export_main([str(tmp_path / "missing.pt"), "--name", "x", "--out", str(tmp_path / "w")]) == 2
