"""Differentially private diffusion (``ddpm`` under ``dp=``, DPDM's noise multiplicity) and the
DP-SGD classifier baseline: accounting against Opacus' own, clipping, reproducibility,
persistence and refusals. Tiny: 8x8 images, a few Poisson steps, one thread."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import synthaug
from synthaug.bench import parse_config, run_cell
from synthaug.cli import main
from synthaug.data import ImageDataset
from synthaug.errors import InvalidDataError, InvalidParameterError
from synthaug.generators import DDPM
from synthaug.metrics import CLASSIFIERS, DPSGDClassifier
from synthaug.nn import PrivateTraining, make_denoiser, poisson_schedule, private_step
from synthaug.nn._privacy import _ALPHAS

pytest.importorskip("opacus")
pytest.importorskip("monai")

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    # Opacus' hooks on the first layer, whose input needs no gradient: expected (fit silences
    # it too, synthaug.nn.quiet_hooks).
    pytest.mark.filterwarnings("ignore:Full backward hook is firing"),
]

TINY = {
    "width": 8,
    "epochs": 2,
    "batch_size": 8,
    "sample_steps": 4,
    "verbose": False,
    "device": "cpu",
    "seed": 0,
}


def private_ddpm(epsilon: float = 5.0, **params) -> DDPM:
    return DDPM(**{**TINY, "dp": synthaug.DP(epsilon=epsilon), **params})


# -- accounting -------------------------------------------------------------------------------
def test_spent_epsilon_is_opacus_own_computation_for_the_run(tiny_images):
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    model = private_ddpm(epsilon=5.0).fit(tiny_images)
    report = model.privacy_
    # The schedule is the released count's, and every planned step ran.
    rate, per_epoch = poisson_schedule(sum(model.class_counts_.values()), 8)
    assert report["sample_rate"] == rate and report["steps"] == 2 * per_epoch
    # Opacus' RDP analysis of the same history: DP-SGD's steps, then the count release (a
    # Gaussian of rate 1, one step), at the orders the accountant optimises over.
    orders = list(_ALPHAS)
    rdp = compute_rdp(
        q=rate, noise_multiplier=report["noise_multiplier"], steps=report["steps"], orders=orders
    ) + compute_rdp(
        q=1.0, noise_multiplier=report["counts"]["noise_multiplier"], steps=1, orders=orders
    )
    epsilon, _ = get_privacy_spent(orders=orders, rdp=rdp, delta=report["delta"])
    assert report["epsilon"] == pytest.approx(float(epsilon), rel=1e-12)
    assert model.privacy_spent_ == (report["epsilon"], report["delta"]) == (report["epsilon"], 1e-5)
    assert 4.9 < report["epsilon"] <= 5.0  # calibrated to the target, not far under it


def test_noise_multiplicity_leaves_epsilon_unchanged_and_trains(tiny_images):
    one = private_ddpm().fit(tiny_images)
    three = private_ddpm(noise_multiplicity=3).fit(tiny_images)
    assert three.privacy_ == one.privacy_  # same noise, same accounting
    assert all(math.isfinite(r["loss"]) for r in three.history_)
    images, labels = three.sample(6, y=[0, 1, 2] * 2, seed=0)
    assert images.shape == (6, 1, 8, 8) and torch.isfinite(images).all()
    assert not torch.equal(images, one.sample(6, y=[0, 1, 2] * 2, seed=0)[0])


def test_feature_vectors_train_privately_through_the_mlp_denoiser():
    g = torch.Generator().manual_seed(0)
    vectors = ImageDataset(torch.rand(30, 6, generator=g), torch.arange(3).repeat(10), list("abc"))
    model = private_ddpm(noise_multiplicity=2, hidden_dims=(16,)).fit(vectors)
    assert model.architecture_ == "mlp"
    assert 0 < model.privacy_spent_[0] <= 5.0
    samples, _ = model.sample(4, y=[0, 1, 2, 0], seed=0)
    assert samples.shape == (4, 6) and torch.isfinite(samples).all()


# -- clipping ---------------------------------------------------------------------------------
def _example_loss(net, x, t, y):
    # Against x itself: MONAI zero-initialises the U-Net's output layer, so a zero target
    # would give zero gradients.
    return F.mse_loss(net(x, t, y), x)


@pytest.mark.parametrize("max_physical_batch", [None, 2])
@pytest.mark.parametrize("clip", [1e-3, 1e3])  # every example clipped; none clipped
def test_each_example_gradient_is_the_clipped_mean_of_its_rows(max_physical_batch, clip):
    torch.manual_seed(0)
    n, k = 5, 3
    net = make_denoiser((1, 8, 8), 3, width=8, res_blocks=1, hidden=(16,))
    reference = copy.deepcopy(net)
    x = torch.randn(n * k, 1, 8, 8)
    t = torch.randint(0, 1000, (n * k,))
    y = torch.randint(0, 4, (n * k,))
    # Each example's gradient, on its own: the gradient of the mean loss over its k rows.
    grads = []
    for i in range(n):
        rows = slice(i * k, (i + 1) * k)
        loss = _example_loss(reference, x[rows], t[rows], y[rows])
        grads.append(torch.autograd.grad(loss, list(reference.parameters())))
    norms = [torch.sqrt(sum(g.pow(2).sum() for g in grad)) for grad in grads]
    # The small bound clips every example; the large one none (the mean itself is summed).
    assert min(norms) > clip if clip < 1 else max(norms) < clip
    expected = [
        sum(grad[j] * min(1.0, clip / float(norm)) for grad, norm in zip(grads, norms, strict=True))
        for j in range(len(grads[0]))
    ]
    run = PrivateTraining(
        synthaug.DP(epsilon=1.0, max_grad_norm=clip),
        n_samples=30,
        batch_size=5,
        epochs=1,
        generator=torch.Generator().manual_seed(0),
    )
    optimizer = run.make_private(net, torch.optim.SGD(net.parameters(), lr=0.0))
    optimizer.noise_multiplier = 0.0  # the clipped sum alone ...
    optimizer.expected_batch_size = 1  # ... not divided by the batch size
    try:
        private_step(
            optimizer,
            n,
            lambda a, b: _example_loss(net, x[a * k : b * k], t[a * k : b * k], y[a * k : b * k]),
            rows_per_example=k,
            max_physical_batch=max_physical_batch,
        )
        got = [p.grad.detach().clone() for p in net.parameters()]
    finally:
        run.close()
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-9)
    # Summed over 5 examples clipped to norm C, the step's gradient is at most 5 C long.
    total = torch.sqrt(sum(g.pow(2).sum() for g in got))
    assert total <= n * clip * (1 + 1e-5)


def test_one_example_step_is_at_most_the_clip_bound():
    torch.manual_seed(1)
    net = make_denoiser((1, 8, 8), 3, width=8, res_blocks=1, hidden=(16,))
    run = PrivateTraining(
        synthaug.DP(epsilon=1.0, max_grad_norm=0.01),
        n_samples=30,
        batch_size=5,
        epochs=1,
        generator=torch.Generator().manual_seed(0),
    )
    optimizer = run.make_private(net, torch.optim.SGD(net.parameters(), lr=0.0))
    optimizer.noise_multiplier, optimizer.expected_batch_size = 0.0, 1
    x, t, y = torch.randn(4, 1, 8, 8), torch.randint(0, 1000, (4,)), torch.randint(0, 4, (4,))
    try:
        private_step(optimizer, 1, lambda a, b: _example_loss(net, x, t, y), rows_per_example=4)
        norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in net.parameters()))
    finally:
        run.close()
    assert 0.0099 < float(norm) <= 0.01 * (1 + 1e-5)


# -- reproducibility, logical batches, guidance --------------------------------------------------
def test_same_seed_same_private_model_and_physical_batches_change_only_memory(tiny_images):
    params = {"noise_multiplicity": 2, "batch_size": 12}
    a = private_ddpm(**params).fit(tiny_images)
    b = private_ddpm(**params).fit(tiny_images)
    parts = private_ddpm(**params, max_physical_batch=3).fit(tiny_images)
    assert torch.equal(a.sample(6, seed=3)[0], b.sample(6, seed=3)[0])
    for p, q in zip(a.modules_.parameters(), parts.modules_.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert parts.privacy_ == a.privacy_


def test_label_dropout_trains_the_unconditional_token_under_dp(tiny_images):
    model = private_ddpm(label_dropout=0.5, guidance=2.0)
    seen: list[torch.Tensor] = []

    def record(module, args):
        seen.append(args[2].detach().clone())

    original = model._build_modules

    def build():
        modules = original()
        modules["net"].register_forward_pre_hook(record)
        return modules

    model._build_modules = build
    model.fit(tiny_images)
    labels = torch.cat(seen)
    null_share = float((labels == 3).float().mean())
    assert 0.3 < null_share < 0.7  # about half the rows train the "no class" token
    images, _ = model.sample(6, y=[0, 1, 2] * 2, seed=0)  # guided: both passes
    assert torch.isfinite(images).all()


# -- persistence and reporting ------------------------------------------------------------------
def test_save_load_keeps_the_privacy_report(tiny_images, tmp_path, capsys):
    model = private_ddpm(noise_multiplicity=2, max_physical_batch=4).fit(tiny_images)
    path = model.save(tmp_path / "dp_ddpm")
    loaded = synthaug.load(path, device="cpu")
    assert loaded.privacy_ == model.privacy_
    assert loaded.privacy_spent_ == model.privacy_spent_
    assert loaded.dp == model.dp and loaded.noise_multiplicity == 2
    assert torch.equal(loaded.sample(4, seed=1)[0], model.sample(4, seed=1)[0])
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    epsilon = f"{model.privacy_['epsilon']:.3g}"
    assert "privacy         epsilon" in out and epsilon in out


# -- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"noise_multiplicity": 0}, "noise_multiplicity=0 is invalid"),
        ({"noise_multiplicity": 2.0}, "noise_multiplicity=2.0 is invalid"),
        ({"noise_multiplicity": 1.5}, "noise_multiplicity=1.5 is invalid"),
        ({"noise_multiplicity": True}, "noise_multiplicity=True is invalid"),
        ({"max_physical_batch": 0}, "max_physical_batch=0 is invalid"),
        ({"compile": True}, "compile=True cannot be combined with dp"),
    ],
)
def test_bad_private_parameters_raise_before_training(tiny_images, params, match):
    model = private_ddpm(**params)
    with pytest.raises(InvalidParameterError, match=match):
        model.fit(tiny_images)
    assert not model.is_fitted


def test_physical_batches_without_dp_are_refused(tiny_images):
    model = DDPM(**TINY, max_physical_batch=4)
    with pytest.raises(InvalidParameterError, match="applies only with dp="):
        model.fit(tiny_images)


# -- the DP-SGD classifier baseline ---------------------------------------------------------------
def test_dp_sgd_classifier_reaches_its_epsilon_by_opacus_analysis(tiny_images):
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    dp = synthaug.DP(epsilon=2.0)
    clf = DPSGDClassifier(network="linear", epochs=3, batch_size=8, dp=dp, device="cpu")
    clf.fit(tiny_images)
    report = clf.privacy_
    rate, per_epoch = poisson_schedule(30, 8)  # the true n: the classifier releases no counts
    assert (report["sample_rate"], report["steps"]) == (rate, 3 * per_epoch) == (rate, clf.n_steps_)
    orders = list(_ALPHAS)
    rdp = compute_rdp(
        q=rate, noise_multiplier=report["noise_multiplier"], steps=report["steps"], orders=orders
    )
    epsilon, _ = get_privacy_spent(orders=orders, rdp=rdp, delta=1e-5)
    assert clf.privacy_spent_ == (pytest.approx(float(epsilon), rel=1e-12), 1e-5)
    assert 1.95 < clf.privacy_spent_[0] <= 2.0
    assert clf.predict(tiny_images.images).shape == (30,)
    assert isinstance(CLASSIFIERS.create("dp-sgd"), DPSGDClassifier)


def test_dp_sgd_classifier_same_seed_same_model_and_without_dp_no_report(tiny_images):
    params = {"network": "linear", "epochs": 2, "batch_size": 8, "device": "cpu"}
    dp = synthaug.DP(epsilon=3.0)
    a = DPSGDClassifier(**params, dp=dp).fit(tiny_images)
    b = DPSGDClassifier(**params, dp=dp).fit(tiny_images)
    plain = DPSGDClassifier(**params).fit(tiny_images)
    x = tiny_images.images
    assert np.array_equal(a.predict_proba(x), b.predict_proba(x))
    assert not np.array_equal(a.predict_proba(x), plain.predict_proba(x))
    assert not hasattr(plain, "privacy_spent_")


def test_dp_sgd_classifier_refuses_bad_input(tiny_images):
    vectors = ImageDataset(torch.rand(30, 5), torch.arange(3).repeat(10), ["a", "b", "c"])
    with pytest.raises(InvalidDataError, match="network='cnn' needs"):
        DPSGDClassifier(network="cnn", epochs=1, device="cpu").fit(vectors)
    with pytest.raises(InvalidParameterError, match="network='vgg' is invalid"):
        DPSGDClassifier(network="vgg").fit(tiny_images)
    with pytest.raises(InvalidParameterError, match="dp=10 is invalid"):
        DPSGDClassifier(dp=10).fit(tiny_images)


def _dp_grid(methods, epsilons=(5.0,)):
    return {
        "task": "tstr",
        "seeds": 1,
        "dataset": {"name": "digits"},
        "privacy": {"epsilons": list(epsilons)},
        "split": {"test_size": 0.25},
        "classifiers": {"logreg": {"max_iter": 200}},
        "methods": methods,
    }


def test_dp_sgd_baseline_row_reaches_its_epsilon_and_names_itself(tmp_path):
    settings = {
        "network": "linear",
        "epochs": 5,
        "lr": 0.05,
        "batch_size": 256,
        "max_grad_norm": 0.5,
    }
    cfg = parse_config(_dp_grid({"real": {}, "dp-sgd": settings}))
    assert cfg.baselines == ["real", "dp-sgd"]
    cell = next(c for c in cfg.cells() if c.method == "dp-sgd")
    metrics = run_cell(cell, workdir=tmp_path)["metrics"]
    assert metrics["classifier_trained"] == "dp-sgd:linear"
    assert 4.9 < metrics["epsilon_spent"] <= 5.0 and metrics["noise_multiplier"] > 0
    assert metrics["balanced_accuracy"] > 0.3  # well above chance (0.1) on the real test part
    assert metrics["n_synthetic"] == 0 and math.isnan(metrics["mia_auc"])
    assert metrics["classifier_steps"] == 5 * poisson_schedule(1145, 256)[1]


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"network": "vgg"}, "network='vgg' is invalid"),
        ({"steps": 10}, "steps"),
        ({"max_grad_norm": 0.0}, "max_grad_norm=0.0 is invalid"),
        ({"dp": 1}, "dp"),
    ],
)
def test_bad_dp_sgd_row_names_the_key(params, where):
    with pytest.raises(InvalidParameterError) as info:
        parse_config(_dp_grid({"dp-sgd": params}))
    assert "methods.dp-sgd" in str(info.value) and where in str(info.value)
