"""``training.days_per_step``: D days per optimiser step in one forward pass.

D = 1 is the one-day step exactly as it was before multi-day steps existed (bit for bit), and a
D-day step is the update of the averaged gradients of its D one-day losses.
"""

from __future__ import annotations

import pytest
import torch

from atft_kedro.errors import ParameterError
from atft_kedro.training import trainer
from atft_kedro.training.augmentation import augment_batch
from atft_kedro.training.distributed import all_finite, day_generator
from atft_kedro.training.trainer import LoopConfig, Sharing, _setup, _train_step, train_phase
from atft_kedro.training.validation import to_device
from tests.training.test_distributed import _setup as setup_phase


def one_day_step_before_multi_day(run, step, epoch):
    """``trainer._train_step`` as of commit 20e123d (before ``days_per_step``): one forward pass
    per day, the mean loss of the step's days back-propagated."""
    phase, loop = run.phase, run.loop
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
        finite = bool(torch.isfinite(torch.nn.utils.clip_grad_norm_(params, loop.grad_clip)))
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
    data, phase, loop, model, loss_fn = setup_phase(market, case)
    phase.epochs = 1
    result = train_phase(model, loss_fn, phase, loop, data.train, data.val, save=lambda *_: None)
    return model, result.history[0]


@pytest.mark.parametrize("case", ["graph", "augment_swa_day_cap"])
def test_one_day_steps_are_bit_identical_to_before(tiny_market, monkeypatch, case):
    model, after = train_one_epoch(tiny_market, case)
    monkeypatch.setattr(trainer, "_train_step", one_day_step_before_multi_day)
    reference, before = train_one_epoch(tiny_market, case)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.equal(a, b), name
    assert after["train_total"] == before["train_total"]


def test_a_d_day_step_is_the_step_of_the_averaged_one_day_gradients(tiny_market):
    days = 4
    runs = {}
    for name, sharing, per_step in (("batched", Sharing(), days),
                                    ("one_day_averaged", Sharing(accumulate=days), 1)):  # fmt: skip
        data, phase, loop, model, loss_fn = setup_phase(tiny_market, "graph")
        loop.days_per_step = per_step
        run = _setup(model, loss_fn, phase, loop, data.train, sharing=sharing, seed=0)
        model.train()
        loss_fn.train()
        for first in range(0, 3 * days, days):  # three steps of four days
            step = [(d, data.train[d]) for d in range(first, first + days)]
            out = _train_step(run, step, epoch=0)
            assert out is not None and out["_days"] == days
        runs[name] = (model, loss_fn, out)
    (a, loss_a, out_a), (b, loss_b, out_b) = runs.values()
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if name.endswith("attention.k.bias"):
            # A key bias adds the same q·b to every key of a query: softmax ignores it, so its
            # gradient is rounding noise, which Adam rescales into full-size, order-dependent steps.
            continue
        torch.testing.assert_close(x, y, atol=2e-6, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
    torch.testing.assert_close(loss_a.sharpe_mean, loss_b.sharpe_mean)
    assert float(out_a["total"]) == pytest.approx(float(out_b["total"]), rel=1e-5)


def test_days_per_step_must_be_a_positive_integer():
    assert LoopConfig.from_params({"days_per_step": 4}).days_per_step == 4
    with pytest.raises(ParameterError, match="training.days_per_step"):
        LoopConfig.from_params({"days_per_step": 0})
