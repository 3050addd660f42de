"""Training objective for one day batch: pinball + squared error + ListNet rank + long-short Sharpe
+ FAN/SAN aux.

All terms ignore stocks whose target is masked (`y_mask` False; the NaN target is replaced before any
arithmetic, so it cannot leak into values or gradients). A term with weight 0 is not computed.
Horizon terms are combined as `Σ_h w_h L_h / Σ_h w_h`.

Target (`LossConfig.target`): the pinball, squared-error and rank terms fit either the raw forward
return or its per-day cross-sectional score. Daily returns are fat-tailed and their cross-sectional
spread changes with the market's volatility, so on raw returns a few stocks on a few stressed days
dominate the gradient; the per-day normal score (`rank_gauss`) weighs every day's ordering alike,
like the rank label of the ridge baseline. The quantiles are then quantiles of that score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from atft_kedro.model.config import DEFAULT_QUANTILES, LossConfig
from atft_kedro.model.segments import Segments


def pinball_loss(
    quantiles: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, taus: torch.Tensor
) -> torch.Tensor:
    """Mean over valid stocks and levels of `max(τ e, (τ − 1) e)`, e = y − q.

    quantiles [N, Q], y [N], valid [N] bool, taus [Q] → scalar (0 if no stock is valid).
    """
    e = torch.where(valid, y, torch.zeros_like(y)).unsqueeze(-1) - quantiles  # [N, Q]
    loss = torch.maximum(taus * e, (taus - 1.0) * e) * valid.unsqueeze(-1)
    return loss.sum() / (valid.sum() * quantiles.shape[-1]).clamp_min(1)


def squared_error(point: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of (point − y)² over valid stocks. point, y, valid [N] → scalar."""
    e = torch.where(valid, y - point, torch.zeros_like(point))
    return (e * e).sum() / valid.sum().clamp_min(1)


def _zscore(v: torch.Tensor, valid: torch.Tensor, eps: float) -> torch.Tensor:
    w = valid.to(v.dtype)
    n = w.sum().clamp_min(1.0)
    mean = (v * w).sum() / n
    std = torch.sqrt((((v - mean) * w) ** 2).sum() / n + eps)
    return (v - mean) / std


def listnet_loss(
    scores: torch.Tensor,
    y: torch.Tensor,
    valid: torch.Tensor,
    temperature: float = 1.0,
    eps: float = 1e-8,
) -> torch.Tensor:
    """ListNet top-one cross-entropy (Cao et al., 2007) between softmax(z(y)/T) and softmax(z(s)/T).

    Scores and targets are z-scored over the valid stocks first, so the loss depends on the
    cross-sectional ordering and spread, not on the return scale. scores, y [N], valid [N] → scalar
    (0 with fewer than two valid stocks).
    """
    if int(valid.sum()) < 2:
        return scores.sum() * 0.0
    y = torch.where(valid, y, torch.zeros_like(y))
    neg = torch.finfo(scores.dtype).min
    target = _zscore(y, valid, eps).div(temperature).masked_fill(~valid, neg).softmax(0)
    log_p = _zscore(scores, valid, eps).div(temperature).masked_fill(~valid, neg).log_softmax(0)
    return -(target * torch.where(valid, log_p, torch.zeros_like(log_p))).sum()


def cross_sectional_target(
    y: torch.Tensor, valid: torch.Tensor, kind: str, clip: float = 3.0
) -> torch.Tensor:
    """The day's targets as a cross-sectional score over the valid stocks (0 elsewhere).

    ``rank_gauss``: Φ⁻¹((rank − 0.5) / n), average ranks for ties; ``zscore``: (y − mean)/std clipped
    to ±clip; ``raw``: y unchanged. y, valid [N] → [N].
    """
    if kind == "raw":
        return y
    y = torch.where(valid, y, torch.zeros_like(y))
    n = valid.sum().clamp_min(1).to(y.dtype)
    if kind == "zscore":
        return (_zscore(y, valid, 1e-12) * valid).clamp(-clip, clip)
    # average 1-based rank among the valid stocks (invalid ones sort last and are masked)
    v = torch.where(valid, y, torch.full_like(y, torch.finfo(y.dtype).max))
    _, inverse, counts = torch.unique(v, sorted=True, return_inverse=True, return_counts=True)
    below = torch.cumsum(counts, 0) - counts
    rank = (below + (counts + 1) / 2).to(y.dtype)[inverse]
    score = torch.special.ndtri(((rank - 0.5) / n).clamp(1e-6, 1 - 1e-6))
    return torch.where(valid, score, torch.zeros_like(score))


def long_short_return(scores: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Return of the dollar-neutral portfolio `w = (s − mean s) / Σ|s − mean s|` over valid stocks
    (long 0.5, short 0.5 gross): `Σ w y`. scores, y [N], valid [N] → scalar."""
    w = valid.to(scores.dtype)
    demeaned = (scores - (scores * w).sum() / w.sum().clamp_min(1.0)) * w
    weights = demeaned / demeaned.abs().sum().clamp_min(1e-12)
    return (weights * torch.where(valid, y, torch.zeros_like(y))).sum()


# Multi-day batches: the same terms per day, as [D] vectors (see model.segments).


def pinball_by_day(
    quantiles: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, taus: torch.Tensor, seg: Segments
) -> torch.Tensor:
    """``pinball_loss`` of each day → [D]."""
    e = torch.where(valid, y, torch.zeros_like(y)).unsqueeze(-1) - quantiles  # [N, Q]
    loss = torch.maximum(taus * e, (taus - 1.0) * e) * valid.unsqueeze(-1)
    count = seg.sum(valid.to(loss.dtype)) * quantiles.shape[-1]
    return seg.sum(loss.sum(-1)) / count.clamp_min(1)


def squared_error_by_day(
    point: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, seg: Segments
) -> torch.Tensor:
    """``squared_error`` of each day → [D]."""
    e = torch.where(valid, y - point, torch.zeros_like(point))
    return seg.sum(e * e) / seg.sum(valid.to(e.dtype)).clamp_min(1)


def listnet_by_day(
    scores: torch.Tensor,
    y: torch.Tensor,
    valid: torch.Tensor,
    temperature: float,
    eps: float,
    seg: Segments,
) -> torch.Tensor:
    """``listnet_loss`` of each day → [D] (0 on a day with fewer than two valid stocks)."""
    y = torch.where(valid, y, torch.zeros_like(y))
    log_target = seg.log_softmax(seg.zscore(y, valid, eps) / temperature, valid)
    target = torch.where(valid, log_target.exp(), torch.zeros_like(log_target))
    log_p = seg.log_softmax(seg.zscore(scores, valid, eps) / temperature, valid)
    loss = -seg.sum(target * log_p)
    return torch.where(seg.sum(valid.to(loss.dtype)) >= 2, loss, torch.zeros_like(loss))


def cross_sectional_target_by_day(
    y: torch.Tensor, valid: torch.Tensor, kind: str, seg: Segments, clip: float = 3.0
) -> torch.Tensor:
    """``cross_sectional_target`` with each day scored on its own → [N]."""
    if kind == "raw":
        return y
    y = torch.where(valid, y, torch.zeros_like(y))
    if kind == "zscore":
        return (seg.zscore(y, valid, 1e-12) * valid).clamp(-clip, clip)
    n = seg.sum(valid.to(y.dtype)).clamp_min(1)[seg.index]
    v = torch.where(valid, y, torch.full_like(y, torch.finfo(y.dtype).max))
    score = torch.special.ndtri(((seg.average_rank(v) - 0.5) / n).clamp(1e-6, 1 - 1e-6))
    return torch.where(valid, score, torch.zeros_like(score))


def long_short_by_day(
    scores: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, seg: Segments
) -> torch.Tensor:
    """``long_short_return`` of each day → [D]."""
    w = valid.to(scores.dtype)
    demeaned = (scores - seg.mean(scores, valid)[seg.index]) * w
    weights = demeaned / seg.sum(demeaned.abs()).clamp_min(1e-12)[seg.index]
    return seg.sum(weights * torch.where(valid, y, torch.zeros_like(y)))


@dataclass(frozen=True)
class _Horizons:
    """A batch's horizons and their weights, and whether it is one day or several (``seg``)."""

    horizons: list[int]
    weights: dict[int, float]
    weight_sum: float  # Σ_h w_h, or 1 when every weight is 0
    seg: Segments | None  # the days of a multi-day batch; None for one day

    def per_day(self, one_day: Callable, by_day: Callable, *args: Any) -> torch.Tensor:
        """``one_day(*args)`` on one day (a scalar), else ``by_day(*args, seg)`` ([D])."""
        return one_day(*args) if self.seg is None else by_day(*args, self.seg)

    def mean(self, loss: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """``Σ_h w_h loss(h) / Σ_h w_h``; on a multi-day batch, then the mean over days ([D] → scalar)."""
        value = cast(torch.Tensor, sum(self.weights[h] * loss(h) for h in self.horizons))
        value = value / self.weight_sum
        return value if self.seg is None else value.mean()


class ATFTLoss(nn.Module):
    """`loss(output, batch) -> (total, parts)`; parts maps each computed term (and "total") to its
    detached 0-d value (a tensor on the loss's device: reading it is the caller's host sync).

    The Sharpe term is `−μ̂ / sqrt(ŝ + ε)` where μ̂, ŝ are bias-corrected EMAs across days of the
    long-short return r and of r²; the previous days' moments are constants (buffers), today's r
    carries the gradient. The moments advance only when `update_state` (default: training mode with
    gradients enabled), so validation does not move them; `reset_state()` clears them.
    """

    taus: torch.Tensor  # buffers (registered in __init__)
    sharpe_mean: torch.Tensor
    sharpe_second: torch.Tensor
    sharpe_days: torch.Tensor

    def __init__(self, cfg: LossConfig, quantiles: tuple[float, ...] = DEFAULT_QUANTILES) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("taus", torch.tensor(quantiles, dtype=torch.float32))
        self.register_buffer("sharpe_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sharpe_second", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sharpe_days", torch.zeros((), dtype=torch.long))

    def reset_state(self) -> None:
        self.sharpe_mean.zero_()
        self.sharpe_second.zero_()
        self.sharpe_days.zero_()

    def _horizon_weights(self, horizons: list[int]) -> dict[int, float]:
        given = self.cfg.horizon_weights
        if given is None:
            return {h: 1.0 for h in horizons}
        missing = [h for h in horizons if h not in given]
        if missing:
            raise ValueError(f"LossConfig.horizon_weights has no weight for horizon(s) {missing}")
        return {h: given[h] for h in horizons}

    def forward(
        self, output: dict[str, Any], batch: dict[str, Any], update_state: bool | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = self.terms(output, batch, update_state)
        anchor = next(iter(output["quantiles"].values()))
        total = sum((weight * value for weight, value in terms.values()), anchor.new_zeros(()))
        parts = {name: value.detach() for name, (_, value) in terms.items()}
        parts["total"] = total.detach()
        return total, parts

    def terms(
        self, output: dict[str, Any], batch: dict[str, Any], update_state: bool | None = None
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """Each enabled term as (weight, value); the fit terms are horizon-weighted means.

        A multi-day batch (``days`` in the batch) gives each term's mean over its days of the
        term computed on each day alone, so D days in one step weigh as D one-day steps do.
        """
        cfg = self.cfg
        horizons = list(output["quantiles"])
        weights = self._horizon_weights(horizons)
        over = _Horizons(horizons, weights, sum(weights.values()) or 1.0, Segments.of(batch))
        terms = self._fit_terms(output, batch, over)
        if cfg.sharpe_weight:
            sharpe = self._sharpe_term(output, batch, over, update_state)
            terms["sharpe"] = (cfg.sharpe_weight, sharpe)
        if cfg.aux_weight:
            terms["aux"] = (cfg.aux_weight, output["aux_loss"])
        return terms

    def _fit_terms(
        self, output: dict[str, Any], batch: dict[str, Any], over: _Horizons
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """The enabled pinball, rank and squared-error terms as (weight, value), each fitting the
        target of ``LossConfig.target`` (quantiles [N, Q] and points [N] per horizon)."""
        cfg = self.cfg
        quantiles: dict[int, torch.Tensor] = output["quantiles"]
        mask = batch["y_mask"]
        per_day = over.per_day
        terms: dict[str, tuple[float, torch.Tensor]] = {}
        if cfg.pinball_weight or cfg.rank_weight or cfg.mse_weight:
            fit = {
                h: per_day(
                    cross_sectional_target,
                    cross_sectional_target_by_day,
                    batch["y"][h],
                    mask[h],
                    cfg.target,
                )
                for h in over.horizons
            }
        if cfg.pinball_weight:
            taus = self._taus(next(iter(quantiles.values())))
            pinball = over.mean(
                lambda h: per_day(pinball_loss, pinball_by_day, quantiles[h], fit[h], mask[h], taus)
            )
            terms["pinball"] = (cfg.pinball_weight, pinball)
        if cfg.rank_weight:
            rank = over.mean(
                lambda h: per_day(
                    listnet_loss,
                    listnet_by_day,
                    output["point"][h],
                    fit[h],
                    mask[h],
                    cfg.rank_temperature,
                    cfg.eps,
                )
            )
            terms["rank"] = (cfg.rank_weight, rank)
        if cfg.mse_weight:
            mse = over.mean(
                lambda h: per_day(
                    squared_error, squared_error_by_day, output["point"][h], fit[h], mask[h]
                )
            )
            terms["mse"] = (cfg.mse_weight, mse)
        return terms

    def _sharpe_term(
        self,
        output: dict[str, Any],
        batch: dict[str, Any],
        over: _Horizons,
        update_state: bool | None,
    ) -> torch.Tensor:
        """The Sharpe term at ``LossConfig.sharpe_horizon`` (default the shortest): a scalar (the
        mean over days of a multi-day batch)."""
        cfg = self.cfg
        h = cfg.sharpe_horizon if cfg.sharpe_horizon is not None else min(over.horizons)
        if h not in output["quantiles"]:
            raise ValueError(
                f"LossConfig.sharpe_horizon={h} is not among the output horizons {over.horizons}"
            )
        mask = batch["y_mask"]
        r = over.per_day(
            long_short_return, long_short_by_day, output["point"][h], batch["y"][h], mask[h]
        )
        if over.seg is None:
            return self._sharpe(r, update_state)
        return self._sharpe_by_day(r, update_state).mean()

    def _taus(self, quantiles: torch.Tensor) -> torch.Tensor:
        """The quantile levels in the output's dtype; their number must match its last axis."""
        taus = self.taus.to(quantiles.dtype)
        if taus.numel() != quantiles.shape[-1]:
            raise ValueError(
                f"ATFTLoss has {taus.numel()} quantile levels, the output has {quantiles.shape[-1]}"
            )
        return taus

    def _advances(self, update_state: bool | None) -> bool:
        """Whether this call moves the Sharpe moments (default: training with gradients)."""
        if update_state is not None:
            return update_state
        return self.training and torch.is_grad_enabled()

    def _sharpe(self, r: torch.Tensor, update_state: bool | None) -> torch.Tensor:
        beta, days = self.cfg.sharpe_ema_decay, int(self.sharpe_days) + 1
        correction = 1.0 - beta**days
        mean = (beta * self.sharpe_mean.to(r.dtype) + (1 - beta) * r) / correction
        second = (beta * self.sharpe_second.to(r.dtype) + (1 - beta) * r * r) / correction
        if self._advances(update_state):
            with torch.no_grad():
                self.sharpe_mean.mul_(beta).add_((1 - beta) * r.detach().double())
                self.sharpe_second.mul_(beta).add_((1 - beta) * r.detach().double() ** 2)
                self.sharpe_days.add_(1)
        return -mean / torch.sqrt(second + self.cfg.eps)

    def _sharpe_by_day(self, r: torch.Tensor, update_state: bool | None) -> torch.Tensor:
        """The Sharpe term of each of D consecutive days ``r [D]`` → [D]: day d sees the moments
        updated by days before it, as D one-day steps would."""
        beta = self.cfg.sharpe_ema_decay
        mean_state, second_state = self.sharpe_mean, self.sharpe_second  # float64, no gradient
        terms = []
        for d in range(r.shape[0]):  # D scalars: a handful of tiny kernels per day
            correction = 1.0 - beta ** (self.sharpe_days + d + 1).to(r.dtype)
            mean = (beta * mean_state.to(r.dtype) + (1 - beta) * r[d]) / correction
            second = (beta * second_state.to(r.dtype) + (1 - beta) * r[d] * r[d]) / correction
            terms.append(-mean / torch.sqrt(second + self.cfg.eps))
            day = r[d].detach().double()
            mean_state = beta * mean_state + (1 - beta) * day
            second_state = beta * second_state + (1 - beta) * day**2
        if self._advances(update_state):
            with torch.no_grad():
                self.sharpe_mean.copy_(mean_state)
                self.sharpe_second.copy_(second_state)
                self.sharpe_days.add_(r.shape[0])
        return torch.stack(terms)
