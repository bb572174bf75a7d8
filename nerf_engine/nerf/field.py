"""The NeRF field: an MLP from (encoded position, view direction) to (colour, density), paper
fig. 7 — positions encoded with the paper's sines and cosines, or (``encoding="triplane"``) read
from multi-resolution feature planes with a small MLP (:mod:`.triplane`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .encoding import PositionalEncoding
from .fused import linear_relu
from .triplane import TriPlaneEncoding


class NeRFField(nn.Module):
    """(encoded position, ray direction) -> (rgb in [0, 1], σ ≥ 0).

    Trunk of ``depth`` ReLU layers of ``width`` with the encoded position concatenated again into
    the input of ``skip_layer``; σ from the trunk; a ``width`` feature (no activation) joined with
    the encoded direction -> ``view_width`` ReLU -> RGB (sigmoid). The view layer is the paper's
    linear map of [feature, encoded direction], split in two so that the direction's half is
    computed once per ray (:meth:`direction_term`) instead of once per sample.

    ``pos_enc`` encodes unit-frame positions: the paper's positional encoding by default, or a
    :class:`~.triplane.TriPlaneEncoding` (see :func:`make_field`).
    """

    def __init__(self, cfg: ModelConfig, pos_enc: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        self.pos_enc = pos_enc if pos_enc is not None else PositionalEncoding(3, cfg.pos_freqs)
        self.dir_enc = PositionalEncoding(3, cfg.dir_freqs)
        in_dim = self.pos_enc.out_dim
        layers = []
        for i in range(cfg.depth):
            width_in = in_dim if i == 0 else cfg.width
            if i == cfg.skip_layer and i > 0:
                width_in += in_dim
            layers.append(nn.Linear(width_in, cfg.width))
        self.trunk = nn.ModuleList(layers)
        self.sigma_head = nn.Linear(cfg.width, 1)
        self.feature = nn.Linear(cfg.width, cfg.width)
        self.view_feature = nn.Linear(cfg.width, cfg.view_width)
        self.view_direction = nn.Linear(self.dir_enc.out_dim, cfg.view_width, bias=False)
        self.rgb_head = nn.Linear(cfg.view_width, 3)
        # hidden layers in one oneDNN call on CPUs under bf16 (:mod:`.fused`); a speed switch
        # only (same parameters, same maths), set from TrainConfig.fused_layers
        self.fused_layers = True

    def density(self, raw: torch.Tensor) -> torch.Tensor:
        if self.cfg.density_activation == "relu":
            return F.relu(raw)
        return F.softplus(raw + self.cfg.density_bias)

    def direction_term(self, rays_d: torch.Tensor) -> torch.Tensor:
        """[N, 3] unit directions -> [N, view_width]: the direction's share of the view layer."""
        return self.view_direction(self.dir_enc(rays_d))

    def trunk_features(self, x_enc: torch.Tensor) -> torch.Tensor:
        h = x_enc
        for i, layer in enumerate(self.trunk):
            if i == self.cfg.skip_layer and i > 0:
                h = torch.cat([x_enc, h], dim=-1)
            h = linear_relu(layer, h, self.fused_layers)
        return h

    def forward(
        self, x_enc: torch.Tensor, dir_term: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x_enc [M, P] encoded positions, dir_term [M, view_width] (each sample's ray's
        :meth:`direction_term`). Returns rgb [M, 3] and raw (pre-activation) density [M, 1]."""
        h = self.trunk_features(x_enc)
        raw_sigma = self.sigma_head(h)
        h = F.relu(self.view_feature(self.feature(h)) + dir_term)
        return torch.sigmoid(self.rgb_head(h)), raw_sigma

    def density_at(self, points: torch.Tensor) -> torch.Tensor:
        """σ [M] at unit-frame points [M, 3], without the colour branch."""
        raw = self.sigma_head(self.trunk_features(self.pos_enc(points)))[..., 0]
        return self.density(raw.float())

    def flops_per_sample(self) -> int:
        """Multiply-adds ×2 of evaluating one sample (encodings and the per-ray direction term are
        negligible)."""
        linear = [m for m in self.modules() if isinstance(m, nn.Linear)]
        return sum(
            2 * m.in_features * m.out_features for m in linear if m is not self.view_direction
        )


def make_field(cfg: ModelConfig, unit_aabb: torch.Tensor) -> NeRFField:
    """The field ``cfg.encoding`` asks for; ``unit_aabb`` [2, 3] is the scene box in the unit
    frame (tri-planes span exactly that)."""
    if cfg.encoding == "triplane":
        encoding = TriPlaneEncoding(cfg.plane_resolutions, cfg.plane_features, unit_aabb)
        return NeRFField(cfg, encoding)
    return NeRFField(cfg)
