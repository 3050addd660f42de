"""``training.days_per_step``: D days per optimiser step in one forward pass.

D = 1 is the one-day step exactly as it was before multi-day steps existed (bit for bit), a D-day
step is the update of the averaged gradients of its D one-day losses (the Sharpe moments advance
day by day), and the weight average decays by ema_decay ** D per D-day step.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from atft_kedro.errors import ParameterError
from atft_kedro.model import ATFTLoss
from atft_kedro.training import trainer
from atft_kedro.training.augmentation import augment_batch
from atft_kedro.training.config import TrainingConfig
from atft_kedro.training.distributed import all_finite, day_generator
from atft_kedro.training.optimisation import weight_average
from atft_kedro.training.phases import AveragingConfig, PhaseConfig
from atft_kedro.training.steps import StepPlan
from atft_kedro.training.trainer import _setup, _train_step, train_phase
from atft_kedro.training.validation import to_device
from tests.training.test_distributed import _setup as setup_phase


def one_day_step_before_multi_day(run, step, epoch):
    """``trainer._train_step`` as of commit 20e123d (before ``days_per_step``): one forward pass
    per day, the mean loss of the step's days back-propagated."""
    phase, cfg = run.spec, run.cfg
    loss_before = {k: v.clone() for k, v in run.loss_fn.state_dict().items()}
    run.optimizer.zero_grad(set_to_none=True)
    finite, sums, samples = True, {}, 0
    for day, batch in step:
        if len(batch["codes"]) == 0:
            continue
        generator = day_generator(run.seed, epoch, day, run.device) if day is not None else None
        batch = augment_batch(to_device(batch, run.device), phase.augmentation, generator)
        with run.autocast():
            loss, parts = run.loss_fn(run.trained(batch), batch)
        finite = finite and bool(torch.isfinite(loss))
        if finite:
            (loss / len(step)).backward()
            samples += len(batch["codes"])
            for name, value in parts.items():  # (the loss returned floats then)
                sums[name] = sums.get(name, 0.0) + float(value)
    if finite and samples:
        params = [p for g in run.optimizer.param_groups for p in g["params"]]
        finite = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)))
    if not all_finite(finite, run.device):
        run.optimizer.zero_grad(set_to_none=True)
        run.loss_fn.load_state_dict(loss_before)
        return None
    if not samples:
        return {}
    run.optimizer.step()
    run.scheduler.step()
    run.global_step += 1
    if run.averaged is not None and epoch >= phase.averaging.start_epoch:
        run.averaged.update_parameters(run.model)
    return sums | {"_samples": samples, "_days": sum(len(b["codes"]) > 0 for _, b in step)}


def train_one_epoch(market, case):
    data, phase, cfg, model, loss_fn = setup_phase(market, case)
    phase.epochs = 1
    result = train_phase(
        model, loss_fn, phase, cfg, data.train, data.val, steps=StepPlan(), save=lambda *_: None
    )
    return model, result.history[0]


@pytest.mark.parametrize("case", ["graph", "augment_swa_day_cap"])
def test_one_day_steps_are_bit_identical_to_before(tiny_market, monkeypatch, case):
    model, after = train_one_epoch(tiny_market, case)
    monkeypatch.setattr(trainer, "_train_step", one_day_step_before_multi_day)
    reference, before = train_one_epoch(tiny_market, case)
    for (name, a), b in zip(
        model.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert after["train_total"] == before["train_total"]


def with_sharpe(phase, model) -> ATFTLoss:
    """The phase's loss with the Sharpe term on: its EMA moments are state a step carries."""
    loss = dataclasses.replace(phase.loss, sharpe_weight=0.1)
    return ATFTLoss(loss, model.cfg.quantiles)


def test_a_d_day_step_is_the_step_of_the_averaged_one_day_gradients(tiny_market):
    days = 4
    runs = {}
    for name, steps in (
        ("batched", StepPlan(days_per_pass=days)),
        ("one_day_averaged", StepPlan(accumulate=days)),
    ):
        data, phase, cfg, model, _ = setup_phase(tiny_market, "graph")
        loss_fn = with_sharpe(phase, model)
        phase.averaging = AveragingConfig(kind="ema", ema_decay=0.5)
        run = _setup(model, loss_fn, phase, cfg, data.train, steps=steps, seed=0)
        model.train()
        loss_fn.train()
        for first in range(0, 3 * days, days):  # three steps of four days
            step = [(d, data.train[d]) for d in range(first, first + days)]
            out = _train_step(run, step, epoch=0)
            assert out is not None and out["_days"] == days
        runs[name] = (run, out)
    (a, out_a), (b, out_b) = runs.values()
    for what in ("model", "averaged"):
        x_state, y_state = getattr(a, what).state_dict(), getattr(b, what).state_dict()
        for (name, x), y in zip(x_state.items(), y_state.values(), strict=True):
            if name.endswith("attention.k.bias"):
                # A key bias adds the same q·b to every key of a query: softmax ignores it, so its
                # gradient is rounding noise, which Adam rescales into full-size, order-dependent
                # steps.
                continue
            torch.testing.assert_close(
                x, y, atol=2e-6, rtol=1e-4, msg=lambda m, n=f"{what} {name}": f"{n}: {m}"
            )
    assert int(a.averaged.n_averaged) == int(b.averaged.n_averaged) == 3  # once per step
    # the Sharpe moments moved, day by day, in both (a long-short day returns ~1e-2 here)
    assert int(a.loss_fn.sharpe_days) == int(b.loss_fn.sharpe_days) == 3 * days
    assert float(a.loss_fn.sharpe_second) > 1e-3**2
    for moment in ("sharpe_mean", "sharpe_second"):
        torch.testing.assert_close(
            getattr(a.loss_fn, moment), getattr(b.loss_fn, moment), rtol=1e-4, atol=0
        )
    assert float(out_a["sharpe"]) == pytest.approx(float(out_b["sharpe"]), rel=1e-4)
    assert float(out_a["total"]) == pytest.approx(float(out_b["total"]), rel=1e-5)


def debiased_ema(thetas: list[float], decay: float) -> float:
    """Σ_s (1 − β) β^(t−s) θ_s / (1 − β^t) over the t steps so far."""
    t = len(thetas)
    return sum((1 - decay) * decay ** (t - s) * x for s, x in enumerate(thetas, 1)) / (1 - decay**t)


@pytest.mark.parametrize(
    ("kind", "days", "want"),
    [
        # β = 0.5 per step
        ("ema", 1, (0.25 * 1 + 0.5 * 2 + 4) / (1 + 0.5 + 0.25)),
        # β = 0.5^4 per 4-day step
        ("ema", 4, (0.5**8 * 1 + 0.5**4 * 2 + 4) / (1 + 0.5**4 + 0.5**8)),
        # equal weights, whatever the days
        ("swa", 4, (1 + 2 + 4) / 3),
    ],
)
def test_a_d_day_step_decays_the_weight_average_by_ema_decay_to_the_d(kind, days, want):
    phase = PhaseConfig(0, averaging=AveragingConfig(kind=kind, ema_decay=0.5))
    model = torch.nn.Linear(1, 1, bias=False)
    average = weight_average(model, phase.averaging, StepPlan(days_per_pass=days))
    for theta in (1.0, 2.0, 4.0):
        model.weight.data.fill_(theta)
        average.update_parameters(model)
    assert average.module.weight.item() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(
    "steps",
    [StepPlan(days_per_pass=4), StepPlan(accumulate=4), StepPlan(accumulate=2, days_per_pass=2)],
)
def test_the_trainer_averages_its_steps_with_the_per_day_decay(tiny_market, steps):
    """Four days a step (batched, one-day gradients averaged, or both): the averaged weights are
    the debiased EMA of the weights after each step with decay ema_decay ** 4."""
    data, phase, cfg, model, loss_fn = setup_phase(tiny_market, "graph")
    phase.averaging = AveragingConfig(kind="ema", ema_decay=0.5)
    run = _setup(model, loss_fn, phase, cfg, data.train, steps=steps, seed=0)
    model.train()
    loss_fn.train()
    after: list[dict[str, torch.Tensor]] = []
    for first in range(0, 12, 4):
        out = _train_step(run, [(d, data.train[d]) for d in range(first, first + 4)], epoch=0)
        assert out is not None
        after.append({n: p.detach().double().clone() for n, p in model.named_parameters()})
    averaged = dict(run.averaged.module.named_parameters())
    rtol, atol = 1e-6, 1e-8  # float32 rounding of the lerps (eps 1.2e-7 of the weight's size)
    gap = 0.0
    for name in after[0]:
        steps = [a[name] for a in after]
        want = debiased_ema(steps, 0.5**4)
        torch.testing.assert_close(
            averaged[name].double(),
            want,
            rtol=rtol,
            atol=atol,
            msg=lambda m, n=name: f"averaged {n}: {m}",
        )
        per_step_decay = debiased_ema(steps, 0.5)  # what decaying by ema_decay per step gives
        gap = max(gap, float(((want - per_step_decay).abs() / (atol + rtol * want.abs())).max()))
    assert gap > 100  # the two decays differ by far more than the tolerance


def test_days_per_step_must_be_a_positive_integer():
    assert TrainingConfig.from_params({"days_per_step": 4}).days_per_step == 4
    with pytest.raises(ParameterError, match="training.days_per_step"):
        TrainingConfig.from_params({"days_per_step": 0})
