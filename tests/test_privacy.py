"""Differentially private training: the DP budget, Opacus integration, accounting, persistence."""

from __future__ import annotations

import copy
import math
import sys

import pytest
import torch
from torch import nn

import synthaug
from synthaug._params import configure
from synthaug.data import ImageDataset
from synthaug.errors import InvalidParameterError, MissingDependencyError
from synthaug.generators import CVAE, create_generator, list_generators
from synthaug.nn import (
    Poisson,
    PrivateTraining,
    Trainer,
    TrainingSettings,
    make_dp_compatible,
    poisson_schedule,
)

pytest.importorskip("opacus")

# Every registered generator, made tiny (a few Poisson steps on 30 images) by setting these
# parameters wherever it has them; only one that needs an argument is listed in REQUIRED.
SMALL = {"latent_dim": 4, "hidden_dims": (16,)}
REQUIRED = {"perclass": lambda: {"estimator": CVAE()}}


def tiny_model(name: str, device: str, **params):
    """The tiny generator ``name``, with ``params`` set wherever they apply (nested too)."""
    model = create_generator(name, **REQUIRED.get(name, dict)())
    configure(model, **SMALL)
    base = {"epochs": 2, "batch_size": 8, "verbose": False, "device": device, "seed": 0}
    assert not configure(model, **{**base, **params})
    return model


# -- the budget -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0},
        {"epsilon": -1.0},
        {"epsilon": math.inf},
        {"epsilon": math.nan},
        {"epsilon": "10"},
        {"epsilon": True},
        {"epsilon": 1.0, "delta": 0.0},
        {"epsilon": 1.0, "delta": 1.0},
        {"epsilon": 1.0, "delta": math.nan},
        {"epsilon": 1.0, "max_grad_norm": 0.0},
        {"epsilon": 1.0, "max_grad_norm": -1.0},
    ],
)
def test_bad_budget_is_refused_with_what_to_fix(kwargs):
    with pytest.raises(InvalidParameterError, match="DP: "):
        synthaug.DP(**kwargs)


def test_default_delta_is_1e5_and_shrinks_for_large_data():
    dp = synthaug.DP(epsilon=1.0)
    assert dp.resolve_delta(1797) == 1e-5
    n = 1_000_000
    assert dp.resolve_delta(n) == pytest.approx(1 / (n * math.log(n)))
    assert dp.resolve_delta(n) < 1 / n


def test_delta_not_below_one_over_n_is_refused(tiny_images, device):
    # 30 training samples: 1/n = 0.033.
    model = tiny_model("cvae", device, dp=synthaug.DP(epsilon=1.0, delta=0.05))
    with pytest.raises(InvalidParameterError, match="not below 1/n"):
        model.fit(tiny_images)
    assert not model.is_fitted


def test_dp_parameter_must_be_a_budget(tiny_images, device):
    with pytest.raises(InvalidParameterError, match="synthaug.DP"):
        tiny_model("cvae", device, dp=1.0).fit(tiny_images)


def test_early_stopping_with_dp_is_refused(tiny_images, device):
    model = tiny_model("cvae", device, dp=synthaug.DP(epsilon=1.0), early_stopping=2)
    with pytest.raises(InvalidParameterError, match="early_stopping cannot be combined"):
        model.fit(tiny_images)


def test_budget_too_small_for_any_noise_is_refused(tiny_images, device):
    model = tiny_model("cvae", device, dp=synthaug.DP(epsilon=1e-9), epochs=50)
    with pytest.raises(InvalidParameterError, match="no noise level"):
        model.fit(tiny_images)


def test_missing_opacus_names_the_extra(tiny_images, device, monkeypatch):
    for name in [m for m in sys.modules if m == "opacus" or m.startswith("opacus.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opacus", None)  # makes `import opacus` fail
    model = tiny_model("cvae", device, dp=synthaug.DP(epsilon=1.0))
    with pytest.raises(MissingDependencyError, match=r"pip install 'synthaug\[privacy\]'"):
        model.fit(tiny_images)


# -- training and accounting ------------------------------------------------------------------
def test_spent_epsilon_is_at_most_the_target(tiny_images, device):
    model = tiny_model("cvae", device, dp=synthaug.DP(epsilon=2.0), epochs=3)
    model.fit(tiny_images)
    epsilon, delta = model.privacy_spent_
    assert 0 < epsilon <= 2.0
    assert delta == 1e-5
    # The schedule follows the released record count, not the true one (30).
    rate, steps_per_epoch = poisson_schedule(sum(model.class_counts_.values()), 8)
    assert model.privacy_["steps"] == 3 * steps_per_epoch
    assert model.privacy_["sample_rate"] == rate
    # The noise was calibrated for exactly this run and the count release: a little less
    # noise would overspend.
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [
        (model.privacy_["noise_multiplier"] * 0.9, rate, 3 * steps_per_epoch),
        (model.privacy_["counts"]["noise_multiplier"], 1.0, 1),
    ]
    assert acc.get_epsilon(delta=delta) > 2.0


def test_fewer_epochs_than_planned_spend_less():
    run = PrivateTraining(
        synthaug.DP(epsilon=3.0),
        n_samples=100,
        batch_size=10,
        epochs=4,
        generator=torch.Generator().manual_seed(0),
    )
    spent = [run.spent(e)[0] for e in range(5)]
    assert spent[0] == 0.0
    assert spent == sorted(spent) and spent[-1] <= 3.0


def test_dp_training_is_reproducible_and_differs_from_non_private(tiny_images, device):
    dp = synthaug.DP(epsilon=5.0)
    a = tiny_model("cvae", device, dp=dp).fit(tiny_images)
    b = tiny_model("cvae", device, dp=dp).fit(tiny_images)
    plain = tiny_model("cvae", device).fit(tiny_images)
    assert torch.equal(a.sample(8, seed=1)[0], b.sample(8, seed=1)[0])
    assert not torch.equal(a.sample(8, seed=1)[0], plain.sample(8, seed=1)[0])
    assert not hasattr(plain, "privacy_spent_")


def test_empty_poisson_batches_are_noise_only_steps(tiny_images, device):
    # batch_size 2 of 30: each step is empty with probability (1 - 1/15)^30 ~ 0.13, so 45
    # steps all but surely include empty ones; training must go through them.
    model = tiny_model("cvae", device, dp=synthaug.DP(epsilon=8.0), batch_size=2, epochs=3)
    model.fit(tiny_images)
    assert all(math.isfinite(v) for rec in model.history_ for v in rec.values())
    assert model.privacy_spent_[0] <= 8.0


def test_poisson_trainer_draws_bernoulli_batches():
    n, batch_size = 200, 20
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    y = torch.zeros(n, dtype=torch.int64)
    sizes: list[int] = []
    seen = torch.zeros(n)

    def step(xb, yb):
        sizes.append(len(xb))
        seen[xb.squeeze(1).long()] += 1
        return {"loss": xb.sum() * 0}

    settings = TrainingSettings(epochs=20, batch_size=batch_size, verbose=False)
    trainer = Trainer(settings, device="cpu", batches=Poisson())
    trainer.run(
        step, x, y, torch.Generator().manual_seed(0), [], modules=nn.Linear(1, 1), optimizers={}
    )
    assert len(sizes) == 20 * poisson_schedule(n, batch_size)[1]
    assert len(set(sizes)) > 3  # sizes vary, as Poisson sampling does
    assert abs(sum(sizes) / len(sizes) - batch_size) < 2.0
    assert seen.min() > 0  # no record is systematically left out


def stores_training_images(name: str) -> bool:
    return create_generator(name, **REQUIRED.get(name, dict)()).stores_training_images


# Families that keep training images (exemplars, or codes they decode) cannot be private:
# DP-SGD protects the weights, not images stored beside them. Listed, not skipped.
PRIVATE = [name for name in list_generators() if not stores_training_images(name)]
EXEMPLAR_KEEPING = [name for name in list_generators() if stores_training_images(name)]


@pytest.mark.parametrize("name", EXEMPLAR_KEEPING)
def test_families_that_keep_training_images_refuse_dp(name, tiny_images, device):
    model = tiny_model(name, device, dp=synthaug.DP(epsilon=4.0))
    with pytest.raises(InvalidParameterError, match="cannot train with dp: it keeps training"):
        model.fit(tiny_images)
    assert not model.is_fitted


def test_the_transfer_families_are_listed_as_keeping_training_images():
    assert {"dagan", "deepsmote", "delta-transfer"} <= set(EXEMPLAR_KEEPING)
    assert {"cvae", "cgan", "perclass-vae", "ddpm"} <= set(PRIVATE)


@pytest.mark.parametrize("name", PRIVATE)
def test_every_generator_trains_privately_on_tiny_data(name, tiny_images, device):
    dp = synthaug.DP(epsilon=4.0)
    model = tiny_model(name, device, dp=dp).fit(tiny_images)
    epsilon, delta = model.privacy_spent_
    assert 0 < epsilon <= 4.0 and delta == 1e-5
    images, labels = model.sample(9, y=[0, 1, 2] * 3, seed=0)
    assert images.shape == (9, 1, 8, 8) and torch.isfinite(images).all()
    assert labels.tolist() == [0, 1, 2] * 3


def test_every_registered_generator_takes_a_budget():
    # Every registered generator has a dp parameter somewhere (a per-class model on its inner
    # estimator): those above train under it, the exemplar-keeping ones refuse it, so none
    # silently trains without the guarantee.
    for name in list_generators():
        model = create_generator(name, **REQUIRED.get(name, dict)())
        assert "dp" not in configure(model, dp=synthaug.DP(epsilon=1.0)), name


def test_dp_model_saves_and_loads_with_its_guarantee(tiny_images, device, tmp_path):
    model = tiny_model("cvae", device, dp=synthaug.DP(epsilon=3.0, delta=1e-6)).fit(tiny_images)
    path = model.save(tmp_path / "dp_cvae")
    loaded = synthaug.load(path, device=device)
    assert loaded.privacy_spent_ == model.privacy_spent_
    assert loaded.privacy_spent_[1] == 1e-6
    assert loaded.privacy_ == model.privacy_
    assert loaded.dp == model.dp
    assert torch.equal(loaded.sample(6, seed=2)[0], model.sample(6, seed=2)[0])


# -- layers DP-SGD cannot train ---------------------------------------------------------------
def test_batch_norm_becomes_group_norm_and_spectral_norm_is_removed():
    net = nn.Sequential(nn.utils.spectral_norm(nn.Linear(4, 8)), nn.BatchNorm1d(8), nn.Linear(8, 1))
    fixed = make_dp_compatible(net)
    kinds = [type(m) for m in fixed.modules()]
    assert nn.BatchNorm1d not in kinds and nn.GroupNorm in kinds
    assert "0.weight_orig" not in dict(fixed.named_parameters())
    assert fixed(torch.rand(3, 4)).shape == (3, 1)


def test_dp_with_batch_norm_trains(device):
    class _BNCVAE(CVAE):
        def _build_modules(self) -> nn.ModuleDict:
            modules = super()._build_modules()
            modules["net"].head = nn.Sequential(nn.BatchNorm1d(16 + 2), modules["net"].head)
            return modules

    g = torch.Generator().manual_seed(0)
    data = ImageDataset(torch.rand(20, 16, generator=g), torch.arange(2).repeat(10), ["a", "b"])
    model = _BNCVAE(
        latent_dim=2,
        hidden_dims=(8,),
        epochs=1,
        batch_size=5,
        verbose=False,
        device=device,
        dp=synthaug.DP(epsilon=5.0, delta=1e-3),
    ).fit(data)
    kinds = [type(m) for m in model.modules_["net"].modules()]
    assert nn.BatchNorm1d not in kinds and nn.GroupNorm in kinds
    assert model.privacy_spent_[0] <= 5.0


@pytest.mark.slow
def test_evaluate_cli_reports_the_guarantee(tmp_path, small_digits, capsys):
    import json

    import numpy as np

    from synthaug.cli import main
    from synthaug.cli._evaluate import load_evaluation_data

    data = tmp_path / "digits.npz"
    images = (small_digits.images[:, 0].numpy() * 255).astype(np.uint8)
    np.savez(data, train_images=images, train_labels=small_digits.labels.numpy())
    train, _, _ = load_evaluation_data(str(data), 0.25, 0)
    model = CVAE(
        epochs=1,
        hidden_dims=(16,),
        batch_size=32,
        verbose=False,
        device="cpu",
        dp=synthaug.DP(epsilon=5.0),
    ).fit(train)
    path = model.save(tmp_path / "dp.safetensors")
    out = tmp_path / "eval.json"
    argv = ["evaluate", str(path), "--data", str(data), "--out", str(out)]
    assert main([*argv, "--feature-epochs", "1", "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    assert result["privacy_spent"] == {"epsilon": model.privacy_spent_[0], "delta": 1e-5}
    # Its class counts are a noisy release: that they differ from the split's is no sign of
    # other data.
    assert model.class_counts_ != {c: n for c, n in train.class_counts().items() if n}
    assert not any("class counts differ" in w for w in result["warnings"])
    assert "differential privacy spent: epsilon=" in capsys.readouterr().out


def test_per_class_guarantee_is_the_largest_class_epsilon(tiny_images, device, tmp_path):
    model = tiny_model("perclass-vae", device, dp=synthaug.DP(epsilon=3.0)).fit(tiny_images)
    per_class = model.privacy_per_class_
    assert sorted(per_class) == [0, 1, 2]
    assert all(0 < e <= 3.0 and d == 1e-5 for e, d in per_class.values())
    assert model.privacy_spent_ == (max(e for e, _ in per_class.values()), 1e-5)
    loaded = synthaug.load(model.save(tmp_path / "pc"), device=device)
    assert loaded.privacy_spent_ == model.privacy_spent_
    assert loaded.privacy_per_class_ == per_class


def test_per_class_delta_is_checked_against_the_whole_data_set(tiny_images, device):
    # 30 records (1/n = 0.033) in classes of 10 (1/n_c = 0.1): 0.05 is refused.
    model = tiny_model("perclass-vae", device, dp=synthaug.DP(epsilon=3.0, delta=0.05))
    with pytest.raises(InvalidParameterError, match="not below 1/n"):
        model.fit(tiny_images)


def test_private_gan_discriminator_drops_spectral_norm_and_reloads(tiny_images, device, tmp_path):
    model = tiny_model("cgan", device, dp=synthaug.DP(epsilon=3.0)).fit(tiny_images)
    d_params = dict(model.modules_["discriminator"].named_parameters())
    assert not any(name.endswith("weight_orig") for name in d_params)
    loaded = synthaug.load(model.save(tmp_path / "dp_cgan"), device=device)
    assert loaded.privacy_spent_ == model.privacy_spent_
    assert torch.equal(loaded.sample(6, seed=3)[0], model.sample(6, seed=3)[0])


def test_ghost_clipping_gives_the_per_sample_clipped_step():
    # With the noise off, one DP-SGD step is the mean of the clipped per-sample gradients:
    # ghost clipping (norms without per-sample gradients) must take the hooks' step.
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(6, 5), nn.SiLU(), nn.Linear(5, 3))
    x, target = torch.randn(8, 6) * 3, torch.randn(8, 3)
    after = []
    for ghost in (False, True):
        net = make_dp_compatible(copy.deepcopy(base))
        net.load_state_dict(base.state_dict())
        run = PrivateTraining(
            synthaug.DP(epsilon=5.0, max_grad_norm=0.5),
            n_samples=8,
            batch_size=8,
            epochs=1,
            generator=torch.Generator().manual_seed(0),
        )
        run.noise_multiplier = 0.0
        opt = run.make_private(net, torch.optim.SGD(net.parameters(), lr=1.0), ghost=ghost)
        per_sample = ((net(x) - target) ** 2).sum(1)
        opt.zero_grad()
        (run.ghost_loss(opt, per_sample) if ghost else per_sample.mean()).backward()
        opt.step()
        run.close()
        after.append([p.detach().clone() for p in net.parameters()])
    moved = [(a - b).abs().max() for a, b in zip(after[0], base.parameters(), strict=True)]
    assert min(moved) > 1e-4  # the step moved every parameter
    for hooks, ghosted in zip(*after, strict=True):
        torch.testing.assert_close(ghosted, hooks, rtol=1e-5, atol=1e-6)
