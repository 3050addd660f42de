"""FAN cost: forward + backward time of one day batch per phase's module set, on CPU.

One day of the `small` market: N = 280 stocks, L = 20 days, F = 93 inputs, ~15 edges per stock,
hidden 32. Measured in the same process, one after the other, with the same thread count:

* FAN alone (forward + backward to its parameters): the window weights α from day t's statistics (the module), against the earlier
  per-position form that ran the window-weight MLP on every (stock, day, feature) — reproduced
  here as `per_position_fan` for the comparison;
* one training step (forward, loss, backward) of the whole model with the modules of each phase,
  as a ratio to phase 0 (the Sharpe term of phases 3–4 on, as in conf/base).

    .venv/bin/python benchmarks/bench_fan.py [--stocks 280] [--repeats 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from atft_kedro.model import ATFTGATFAN, ATFTLoss, LossConfig, ModelConfig
from atft_kedro.model.fan import FAN, trailing_moments

HORIZONS = (1, 5, 10, 20)


def per_position_fan(fan: FAN, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The earlier FAN: α = softmax(MLP([μ_w, log σ_w])) at every (stock, day, feature)."""
    cfg = fan.cfg
    zs, mus, log_sigmas = [x.clamp(-cfg.clamp, cfg.clamp)], [], []
    for mu, var in trailing_moments(x, valid, cfg.windows):
        sigma = torch.sqrt(var + cfg.eps).clamp_min(cfg.sigma_floor)
        zs.append(((x - mu) / (sigma + cfg.eps)).clamp(-cfg.clamp, cfg.clamp))
        mus.append(mu.clamp(-cfg.clamp, cfg.clamp))
        log_sigmas.append(sigma.log())
    z = torch.stack(zs)
    stats = torch.stack(mus + log_sigmas).flatten(1)
    fc1, fc2 = fan.weight_hidden, fan.weight_logits
    hidden = F.elu(torch.addmm(fc1.bias[:, None], fc1.weight, stats))
    logits = torch.addmm(fc2.bias[:, None], fc2.weight, hidden).view_as(z)
    alpha = (logits + fan.feature_logit_bias.T[:, None, None, :]).softmax(dim=0)
    entropy = -(alpha * alpha.clamp_min(1e-12).log()).sum(0)
    return (alpha * z).sum(0) * valid, entropy.mean()


def day_batch(n: int, length: int, n_features: int, per_node: int) -> dict:
    g = torch.Generator().manual_seed(0)
    e = n * per_node
    return {
        "x": torch.randn(n, length, n_features, generator=g),
        "mask": torch.rand(n, length, generator=g) > 0.02,
        "static": {
            "market": torch.randint(0, 4, (n,), generator=g),
            "sector33": torch.randint(0, 34, (n,), generator=g),
        },
        "edge_index": torch.randint(0, n, (2, e), generator=g),
        "edge_attr": torch.rand(e, 3, generator=g),
        "y": {h: 0.02 * torch.randn(n, generator=g) for h in HORIZONS},
        "y_mask": {h: torch.ones(n, dtype=torch.bool) for h in HORIZONS},
    }


def timed(fn: Callable[[], None], repeats: int) -> float:
    """Median seconds of `fn` over `repeats` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stocks", type=int, default=280)
    parser.add_argument("--features", type=int, default=93)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = day_batch(args.stocks, 20, args.features, 15)
    model = ATFTGATFAN(ModelConfig(n_features=args.features, hidden=args.hidden))
    x = batch["x"]  # no gradient to the inputs, as in training: backward reaches the parameters
    valid = batch["mask"].unsqueeze(-1).float()

    def fan_new() -> None:
        out, aux, _ = model.fan(x, batch["mask"])
        (out.sum() + aux).backward()

    def fan_old() -> None:
        out, aux = per_position_fan(model.fan, x, valid)
        (out.sum() + aux).backward()

    def san() -> None:
        out, aux, _ = model.san(x, batch["mask"])
        (out.sum() + aux).backward()

    t_new, t_old, t_san = (timed(f, args.repeats) for f in (fan_new, fan_old, san))
    print(f"N={args.stocks} L=20 F={args.features} H={args.hidden} threads={args.threads}")
    print(f"FAN fwd+bwd, α per position (before): {1e3 * t_old:7.1f} ms")
    print(
        f"FAN fwd+bwd, α from day t (now):      {1e3 * t_new:7.1f} ms  ({t_old / t_new:.1f}x faster)"
    )
    print(f"SAN fwd+bwd:                          {1e3 * t_san:7.1f} ms")

    phases = {
        0: ((False, False, False), LossConfig(rank_weight=0.1, aux_weight=0.0)),
        1: ((True, True, False), LossConfig(rank_weight=0.1)),
        2: ((True, True, True), LossConfig(rank_weight=0.1)),
        3: ((True, True, True), LossConfig(rank_weight=0.5, sharpe_weight=0.1)),
    }
    base = None
    for phase, (switches, loss_cfg) in phases.items():
        model.set_modules(*switches)
        loss_fn = ATFTLoss(loss_cfg)

        def step(loss_fn: ATFTLoss = loss_fn) -> None:
            loss, _ = loss_fn(model(batch), batch)
            model.zero_grad(set_to_none=True)
            loss.backward()

        t = timed(step, args.repeats)
        base = base or t
        print(f"phase {phase} training step: {1e3 * t:7.1f} ms  ({t / base:.2f}x phase 0)")


if __name__ == "__main__":
    main()
