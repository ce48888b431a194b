"""The diffusion family (``ddpm``): guidance, EMA, the two samplers, keyed sampling, the
networks' layout and its refusals. The contract suites cover the rest (save/load, shapes,
warnings, parameter rules); these tests are what is particular to diffusion."""

import math
import sys

import numpy as np
import pytest
import torch

import synthaug
from synthaug.augment import GenerativeOverSampler, LesionTransplant
from synthaug.bench._methods import kind_of, validate_method
from synthaug.cli import main
from synthaug.data import ImageDataset, make_phantoms, save_npz
from synthaug.errors import InvalidParameterError, MissingDependencyError
from synthaug.generators import DDPM, create_generator
from synthaug.nn import (
    MLPDenoiser,
    UNetDenoiser,
    ddim,
    dpm_solver_pp_2m,
    guided_output,
    noise_scheduler,
    sampling_grid,
    unet_levels,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"width": 8, "batch_size": 32, "verbose": False, "device": "cpu"}


@pytest.fixture(scope="module")
def fitted(small_digits):
    """A U-Net trained for 140 steps on 200 digits (8x8): a fixed model to sample from."""
    torch.set_num_threads(1)
    return DDPM(epochs=20, lr=2e-3, sample_steps=10, **TINY).fit(small_digits)


def _labels(n: int) -> torch.Tensor:
    return torch.arange(n) % 10


# -- the family ------------------------------------------------------------------------------
def test_registered_and_laid_out_by_the_sample_shape(fitted):
    assert isinstance(create_generator("ddpm"), DDPM)
    assert fitted.architecture_ == "unet"
    assert isinstance(fitted.modules_["net"], UNetDenoiser)
    unet = fitted.modules_["net"].unet
    assert tuple(unet.block_out_channels) == (8, 16)
    assert tuple(unet.attention_levels) == (False, True)  # attention at 4x4 only
    assert unet.num_class_embeds == 11  # ten classes and the "no class" token


@pytest.mark.parametrize(
    ("shape", "sides", "attention"),
    [
        ((1, 8, 8), [8, 4], [False, True]),
        ((3, 16, 32), [16, 8], [False, True]),
        ((1, 28, 28), [28, 14, 7], [False, True, True]),
        ((1, 64, 64), [64, 32, 16, 8], [False, False, True, True]),
        ((3, 128, 128), [128, 64, 32, 16], [False, False, False, True]),
    ],
)
def test_unet_levels_halve_to_about_8_pixels_with_attention_at_16_and_below(
    shape, sides, attention
):
    assert unet_levels(shape) == sides
    net = UNetDenoiser(shape, 3, width=8, res_blocks=1)
    assert list(net.unet.attention_levels) == attention
    x = torch.randn(2, *shape)
    out = net(x, torch.tensor([5, 900]), torch.tensor([0, 3]))
    assert out.shape == x.shape


@pytest.mark.parametrize("prediction", ["v", "epsilon"])
def test_feature_vectors_go_through_the_mlp_denoiser(prediction):
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.2] * 6, [0.8] * 6])
    labels = torch.arange(2).repeat(60)
    x = (centres[labels] + 0.05 * torch.randn(120, 6, generator=g)).clamp(0, 1)
    model = DDPM(
        epochs=40,
        hidden_dims=(64, 64),
        sample_steps=10,
        guidance=0.0,
        prediction=prediction,
        **TINY,
    )
    model.fit(ImageDataset(x, labels, ["low", "high"]))
    assert model.architecture_ == "mlp" and isinstance(model.modules_["net"], MLPDenoiser)
    samples, got = model.sample(40, y=[0, 1] * 20, seed=0)
    assert samples.shape == (40, 6) and torch.equal(got, torch.tensor([0, 1] * 20))
    # each class's samples centre on its own centre
    means = torch.stack([samples[got == c].mean(0) for c in (0, 1)])
    assert (means - centres).abs().max() < 0.1
    # guidance pushes the classes apart (away from the unconditional mean)
    guided = model.set_params(guidance=2.0).sample(40, y=[0, 1] * 20, seed=0)[0]
    guided_means = torch.stack([guided[got == c].mean(0) for c in (0, 1)])
    assert (guided_means[1] - guided_means[0]).mean() > (means[1] - means[0]).mean()


# -- sampling --------------------------------------------------------------------------------
def test_same_seed_same_samples_and_another_seed_others(fitted):
    a, _ = fitted.sample(20, y=_labels(20), seed=3)
    b, _ = fitted.sample(20, y=_labels(20), seed=3)
    c, _ = fitted.sample(20, y=_labels(20), seed=4)
    assert torch.equal(a, b)
    assert (a - c).abs().mean() > 0.05


def test_samples_do_not_depend_on_the_batch_they_are_drawn_in(fitted):
    keys = torch.arange(100, 140)
    whole, _ = fitted.sample(40, y=_labels(40), seed=1, keys=keys)
    parts = [
        fitted.sample(len(k), y=_labels(40)[k - 100], seed=1, keys=k)[0] for k in keys.split(7)
    ]
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-5, atol=1e-5)
    # and the network's batches: forced to 3 rows each, the same samples again
    fitted.__dict__["_sample_batch"] = (fitted.modules_, 3)
    try:
        again, _ = fitted.sample(40, y=_labels(40), seed=1, keys=keys)
    finally:
        del fitted.__dict__["_sample_batch"]
    torch.testing.assert_close(again, whole, rtol=1e-5, atol=1e-5)


def test_guidance_changes_samples_and_its_two_passes_are_one_forward(fitted, monkeypatch):
    noise = torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = _labels(10)
    plain = fitted.solve(noise, y, guidance=0.0)
    guided = fitted.solve(noise, y, guidance=2.0)
    assert (plain - guided).abs().mean() > 1e-3
    net = fitted.modules_["ema"].net
    t = torch.full((10,), 400)
    with torch.no_grad():
        cond, uncond = net(noise, t, y), net(noise, t, torch.full_like(y, 10))
        both = guided_output(net, noise, t, y, 10, 2.0)
    torch.testing.assert_close(both, 3 * cond - 2 * uncond, rtol=1e-4, atol=1e-5)
    calls = []
    real = type(net).forward
    monkeypatch.setattr(
        type(net), "forward", lambda self, *a: calls.append(len(a[0])) or real(self, *a)
    )
    with torch.no_grad():
        guided_output(net, noise, t, y, 10, 2.0)
        guided_output(net, noise, t, y, 10, 0.0)
    assert calls == [20, 10]  # one batched forward with guidance, the conditional pass without


def test_ddim_is_deterministic(fitted):
    noise = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    a = fitted.solve(noise, _labels(8), sampler="ddim", steps=20)
    b = fitted.solve(noise.clone(), _labels(8), sampler="ddim", steps=20)
    assert torch.equal(a, b)


def _gaussian_denoiser(mu: float, s: float, alphas: dict[int, float]):
    """The exact x0(x_t, t) of Gaussian data N(mu, s^2): the ODE's solution is then known."""

    def denoise(x: torch.Tensor, t: int) -> torch.Tensor:
        a, var = math.sqrt(alphas[t]), 1 - alphas[t]
        return mu + a * s**2 / (a**2 * s**2 + var) * (x - a * mu)

    return denoise


@pytest.mark.parametrize("schedule", ["cosine", "linear_beta"])
def test_the_solvers_converge_to_the_exact_ode_solution_dpm_faster(schedule):
    # For Gaussian data the probability-flow ODE keeps (x - a mu) / sqrt(a^2 s^2 + sigma^2):
    # the exact sample of each starting noise is known, so each solver's error can be measured.
    mu, s = 0.2, 0.3
    scheduler = noise_scheduler(schedule, 1000)
    x_start = torch.randn(256, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def error(solver, steps: int) -> float:
        grid = sampling_grid(scheduler, steps)
        t0, ab0 = grid[0]
        exact = mu + s * (x_start - math.sqrt(ab0) * mu) / math.sqrt(ab0 * s**2 + 1 - ab0)
        got = solver(_gaussian_denoiser(mu, s, dict(grid)), x_start, grid)
        return float((got - exact).abs().max())

    for steps in (10, 25, 50):
        assert error(dpm_solver_pp_2m, steps) < error(ddim, steps)
    assert error(dpm_solver_pp_2m, 50) < error(ddim, 200)
    assert error(dpm_solver_pp_2m, 200) < 1e-2 * s
    assert error(ddim, 200) < error(ddim, 50) / 3  # first order: about 4 times less error


def test_dpm_solver_at_50_steps_is_close_to_ddim_at_200_on_a_fixed_model(fitted):
    noise = torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = _labels(10)

    def solve(x: torch.Tensor, sampler: str, steps: int) -> torch.Tensor:
        return fitted.solve(x, y, sampler=sampler, steps=steps, guidance=0.0)

    reference = solve(noise, "ddim", 200)
    gap = (solve(noise, "dpm++", 50) - reference).abs().mean()
    other = solve(torch.randn_like(noise), "ddim", 200)
    assert gap < 0.25 * (other - reference).abs().mean()  # far nearer than another sample
    assert gap < (solve(noise, "ddim", 50) - reference).abs().mean()  # nearer than DDIM at 50


def test_save_load_gives_the_same_samples(fitted, tmp_path):
    path = fitted.save(tmp_path / "ddpm")
    loaded = synthaug.load(path, device="cpu")
    assert loaded.get_params() == fitted.get_params()
    assert torch.equal(loaded.sample(12, seed=5)[0], fitted.sample(12, seed=5)[0])


def test_ema_weights_are_the_ones_sampled_and_trail_the_trained_ones(fitted):
    net, ema = fitted.modules_["net"], fitted.modules_["ema"]
    assert int(ema.updates) == 140  # one update per step: 20 epochs of 7 batches
    trained = torch.cat([p.flatten() for p in net.parameters()])
    averaged = torch.cat([p.flatten() for p in ema.net.parameters()])
    assert not torch.equal(trained, averaged)


def test_resume_continues_to_the_same_result(tiny_images, tmp_path):
    # The EMA copy and its warm-up count are in the checkpoint like the weights.
    small = {**TINY, "width": 4, "sample_steps": 3}
    full = DDPM(epochs=4, **small).fit(tiny_images)
    ckpt = str(tmp_path / "ckpt")
    DDPM(epochs=2, checkpoint_dir=ckpt, checkpoint_every=1, **small).fit(tiny_images)
    resumed = DDPM(epochs=4, checkpoint_dir=ckpt, resume=True, **small).fit(tiny_images)
    assert resumed.history == full.history
    for key, value in full.modules_.state_dict().items():
        assert torch.equal(value, resumed.modules_.state_dict()[key]), key
    assert torch.equal(full.sample(8, seed=0)[0], resumed.sample(8, seed=0)[0])


# -- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"prediction": "x0"}, "prediction='x0' is invalid; it must be one of 'epsilon', 'v'"),
        ({"sampler": "euler"}, "sampler='euler' is invalid; it must be one of 'ddim', 'dpm"),
        ({"schedule": "quadratic"}, "schedule='quadratic' is invalid"),
        ({"sample_steps": 0}, "sample_steps=0 is invalid"),
        ({"guidance": -1.0}, "guidance=-1.0 is invalid"),
        ({"label_dropout": 1.0}, r"label_dropout=1.0 is invalid; it must be a number in \[0, 1\)"),
        ({"ema_decay": 1.0}, "ema_decay=1.0 is invalid"),
        ({"width": 0}, "width=0 is invalid"),
        ({"sample_steps": 60, "train_timesteps": 50}, "sample_steps=60 exceeds train_timesteps=50"),
        ({"guidance": 1.0, "label_dropout": 0.0}, "needs label_dropout > 0"),
        ({"max_physical_batch": 8}, "max_physical_batch=8 splits DP-SGD's Poisson batches"),
        ({"noise_multiplicity": 0}, "noise_multiplicity=0 is invalid"),
    ],
)
def test_bad_parameters_raise_before_training(tiny_images, params, match):
    model = DDPM(**{**TINY, **params})
    with pytest.raises(InvalidParameterError, match=match):
        model.fit(tiny_images)
    assert not model.is_fitted


@pytest.mark.parametrize("module", ["monai.networks.nets", "monai.networks.schedulers", "einops"])
def test_without_monai_fit_names_the_extra(tiny_images, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes importing it fail
    model = DDPM(epochs=1, **TINY)
    with pytest.raises(MissingDependencyError, match=r"pip install 'synthaug\[monai\]'"):
        model.fit(tiny_images)
    assert not model.is_fitted


# -- as a part of the rest -------------------------------------------------------------------
def test_generative_oversampler_balances_with_ddpm():
    g = np.random.default_rng(0)
    X = np.vstack([g.normal(0.3, 0.05, (40, 5)), g.normal(0.7, 0.05, (8, 5))]).clip(0, 1)
    y = np.array([0] * 40 + [1] * 8)
    over = GenerativeOverSampler(DDPM(epochs=5, hidden_dims=(32,), sample_steps=5, **TINY))
    X_res, y_res = over.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [40, 40] and X_res.shape == (80, 5)
    assert isinstance(over.generator_, DDPM) and over.generator_.is_fitted


def test_lesion_transplant_takes_ddpm_as_its_generator():
    data, masks = make_phantoms((12, 4), size=32, seed=3, return_masks=True)
    generator = DDPM(epochs=2, sample_steps=3, width=4, verbose=False)
    source = LesionTransplant(generator=generator, device="cpu", seed=0).fit(data, masks=masks)
    images, labels, out = source.sample(4, y="lesion", seed=0, return_masks=True)
    assert images.shape == (4, 1, 32, 32) and labels.tolist() == [1] * 4
    assert isinstance(source.generator_, DDPM) and out.flatten(1).any(1).all()


def test_train_command_fits_and_saves_a_ddpm(tmp_path, small_digits):
    data = tmp_path / "digits.npz"
    save_npz(small_digits, data)
    out = tmp_path / "ddpm.safetensors"
    argv = ["train", "--model", "ddpm", "--data", str(data), "--out", str(out)]
    argv += ["--epochs", "1", "--device", "cpu", "--param", "width=4", "--param", "sample_steps=3"]
    assert main(argv) == 0
    model = synthaug.load(out, device="cpu")
    assert isinstance(model, DDPM) and model.width == 4 and model.sample_steps == 3


def test_a_harness_method_by_name_alone_and_with_a_training_fix():
    assert kind_of("ddpm", "methods.ddpm") == "generator"
    validate_method("ddpm+balanced-online", {"ddpm": {"epochs": 50, "sample_steps": 10}})
    with pytest.raises(InvalidParameterError, match="sample_steps"):
        validate_method("ddpm", {"sample_steps": 0})


def test_bf16_autocast_trains_on_the_cpu(tiny_images):
    model = DDPM(epochs=2, amp="bf16", sample_steps=3, **{**TINY, "width": 4}).fit(tiny_images)
    images, _ = model.sample(6, seed=0)
    assert torch.isfinite(images).all() and len(model.history_) == 2
