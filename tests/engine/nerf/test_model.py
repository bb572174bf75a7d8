"""The field and the coarse-to-fine renderer: architecture, output ranges, missed rays."""

from __future__ import annotations

import torch
from torch import nn

from nerf_engine.config import ModelConfig, SamplingConfig, preset
from nerf_engine.nerf.field import NeRFField
from nerf_engine.nerf.model import NeRF, padded_count, render_rays
from nerf_engine.nerf.rays import RayBatch


def test_paper_architecture():
    cfg = preset("paper")
    field = NeRFField(cfg.model)
    widths = [(m.in_features, m.out_features) for m in field.trunk]
    assert widths == [(63, 256)] + [(256, 256)] * 4 + [(256 + 63, 256)] + [(256, 256)] * 2
    assert (field.sigma_head.in_features, field.sigma_head.out_features) == (256, 1)
    # the view layer on [feature, encoded direction] (256 + 27 -> 128), split per sample / per ray
    assert (field.view_feature.in_features, field.view_feature.out_features) == (256, 128)
    assert (field.view_direction.in_features, field.view_direction.out_features) == (27, 128)
    assert field.view_direction.bias is None
    assert field.rgb_head.out_features == 3
    n_params = sum(p.numel() for p in field.parameters())
    linear = [(63, 256), *[(256, 256)] * 4, (319, 256), (256, 256), (256, 256)]
    linear += [(256, 1), (256, 256), (283, 128), (128, 3)]
    assert n_params == sum(i * o + o for i, o in linear)
    model = NeRF(cfg.model, cfg.sampling)
    assert cfg.sampling.n_coarse == 64 and cfg.sampling.n_fine == 128
    assert isinstance(model.fine, NeRFField) and model.fine is not model.coarse


def rays(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    return RayBatch(-2.5 * d, d, torch.full((n, 1), 1.0), torch.full((n, 1), 4.0))


def test_field_outputs_in_range_and_density_non_negative():
    for activation in ("softplus", "relu"):
        field = NeRFField(
            ModelConfig(depth=3, width=32, view_width=16, density_activation=activation)
        )
        x = field.pos_enc(torch.randn(500, 3) * 3)
        d = field.direction_term(torch.nn.functional.normalize(torch.randn(500, 3), dim=-1))
        rgb, raw = field(x, d)
        sigma = field.density(raw[..., 0])
        assert rgb.shape == (500, 3) and raw.shape == (500, 1)
        assert (rgb >= 0).all() and (rgb <= 1).all()
        assert (sigma >= 0).all()
        # the colour-free density path (used by the occupancy grid) gives the same σ
        points = torch.randn(500, 3)
        _, raw = field(field.pos_enc(points), d)
        torch.testing.assert_close(field.density_at(points), field.density(raw[..., 0]))


def test_split_view_layer_equals_the_papers_layer_on_the_concatenation():
    field = NeRFField(ModelConfig(depth=2, width=32, view_width=16))
    feature = torch.randn(7, 32)
    dirs = torch.nn.functional.normalize(torch.randn(7, 3), dim=-1)
    d_enc = field.dir_enc(dirs)
    joint = torch.nn.Linear(32 + d_enc.shape[-1], 16)
    with torch.no_grad():
        joint.weight.copy_(torch.cat([field.view_feature.weight, field.view_direction.weight], 1))
        joint.bias.copy_(field.view_feature.bias)
    expected = joint(torch.cat([feature, d_enc], -1))
    torch.testing.assert_close(field.view_feature(feature) + field.direction_term(dirs), expected)


def test_softplus_density_is_never_dead_at_initialisation():
    """The guard against collapse: every sample gets a density gradient, even with raw σ < 0."""
    field = NeRFField(ModelConfig(depth=2, width=16, view_width=8))
    raw = torch.linspace(-20, 5, 100, requires_grad=True)
    field.density(raw).sum().backward()
    assert (raw.grad > 0).all()


def test_coarse_and_fine_outputs():
    model = NeRF(
        ModelConfig(depth=2, width=32, view_width=16), SamplingConfig(n_coarse=16, n_fine=24)
    )
    g = torch.Generator().manual_seed(0)
    out = model(rays(), torch.ones(3), perturb=True, generator=g)
    assert out.coarse.weights.shape == (32, 16) and out.fine.weights.shape == (32, 40)
    assert out.n_samples == 32 * (16 + 40)
    for part in (out.coarse, out.fine):
        assert (
            part.rgb.shape == (32, 3) and part.acc.shape == (32, 1) and part.depth.shape == (32, 1)
        )
        assert (part.acc >= 0).all() and (part.acc <= 1 + 1e-6).all()
        assert (part.rgb >= 0).all() and (part.rgb <= 1 + 1e-6).all()
    deterministic = [model(rays(), None, perturb=False).fine.rgb for _ in range(2)]
    torch.testing.assert_close(deterministic[0], deterministic[1])


def test_gradients_reach_both_networks_and_bf16_autocast_runs():
    model = NeRF(
        ModelConfig(depth=2, width=32, view_width=16), SamplingConfig(n_coarse=8, n_fine=8)
    )
    out = model(rays(), torch.ones(3), perturb=True, autocast_dtype=torch.bfloat16)
    assert out.fine.rgb.dtype == torch.float32
    (out.fine.rgb.sum() + out.coarse.rgb.sum()).backward()
    for net in (model.coarse, model.fine):
        grads = [p.grad for p in net.parameters() if isinstance(p, nn.Parameter)]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_rays_that_miss_the_box_cost_nothing_and_show_background():
    model = NeRF(
        ModelConfig(depth=2, width=32, view_width=16), SamplingConfig(n_coarse=8, n_fine=8)
    )
    batch = rays(10)
    batch.far[::2] = batch.near[::2]  # every other ray missed
    out = render_rays(model, batch, torch.tensor([0.2, 0.4, 0.6]), perturb=False)
    assert out.n_samples == 5 * (8 + 16)
    torch.testing.assert_close(out.fine.rgb[::2], torch.tensor([[0.2, 0.4, 0.6]]).expand(5, 3))
    assert (out.fine.acc[::2] == 0).all()
    hit_only = model(
        batch.subset(torch.arange(1, 10, 2)), torch.tensor([0.2, 0.4, 0.6]), perturb=False
    )
    torch.testing.assert_close(out.fine.rgb[1::2], hit_only.fine.rgb)


def test_padded_counts_are_few_and_at_most_one_sixteenth_larger():
    sizes = set()
    for n in range(1, 200_000, 7):
        p = padded_count(n)
        assert n <= p <= n + n / 16, (n, p)
        sizes.add(p)
    # 16 per octave over ~15 octaves, plus the small exact sizes
    assert len(sizes) < 16 * 18 + 16
    assert padded_count(1000) == padded_count(padded_count(1000))


def test_a_pass_whose_rays_all_miss_still_reaches_every_parameter():
    """Several processes average the gradients in the backward, waiting for every parameter: a
    rank whose rays all missed the box must still give each one a (zero) gradient, or the next
    step fails (one process here: DDP then says so; with several the others would wait)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    cfg = preset("preview")
    alone = NeRF(cfg.model, cfg.sampling)  # one process: a loss to go back through
    missing = rays(8)
    missing = RayBatch(missing.rays_o, missing.rays_d, missing.far, missing.near)  # far < near
    render_rays(alone, missing, torch.ones(3), perturb=True).final.rgb.sum().backward()
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        net = DistributedDataParallel(NeRF(cfg.model, cfg.sampling))
        kwargs = {"perturb": True, "use_grid": False}
        for batch in (missing, rays(8)):
            out = render_rays(net, batch, torch.ones(3), **kwargs)
            sum((part.rgb - 0.5).square().mean() for part in (out.coarse, out.fine)).backward()
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        missed = render_rays(net, missing, torch.ones(3), **kwargs)
        assert torch.equal(missed.final.rgb, torch.ones(8, 3))  # (the probe adds nothing)
    finally:
        dist.destroy_process_group()
