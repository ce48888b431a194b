"""The shared trainer (resume, early stopping, checkpoints), architectures, CGAN and PerClass."""

import inspect

import pytest
import torch

import synthaug
from synthaug._params import params_of
from synthaug.data import ImageDataset
from synthaug.errors import (
    CheckpointError,
    InvalidParameterError,
    NotFittedError,
    TrainingDivergedError,
)
from synthaug.generators import CGAN, CVAE, PerClass, TorchGenerator, create_generator
from synthaug.nn import (
    Indices,
    Shuffled,
    Trainer,
    TrainingSettings,
    WithReplacement,
    choose_architecture,
    diff_augment,
    optimizer_step,
    validation_split,
)

SMALL = {"batch_size": 16, "latent_dim": 4, "hidden_dims": (32,), "verbose": False}


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    return ImageDataset(torch.rand(40, 1, 8, 8, generator=g), torch.arange(2).repeat(20))


# -- resume --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cvae", "cgan"])
def test_resume_continues_to_the_same_result(name, data, device, tmp_path):
    full = create_generator(name, epochs=4, device=device, **SMALL).fit(data)
    # an "interrupted" run: the same configuration stopped after 2 epochs, checkpointed
    ckpt = tmp_path / "ckpt"
    create_generator(
        name, epochs=2, checkpoint_dir=str(ckpt), checkpoint_every=1, device=device, **SMALL
    ).fit(data)
    assert (ckpt / "checkpoint.pt").is_file()
    resumed = create_generator(
        name, epochs=4, checkpoint_dir=str(ckpt), resume=True, device=device, **SMALL
    ).fit(data)
    assert resumed.history == full.history
    for key, value in full.modules_.state_dict().items():
        assert torch.equal(value, resumed.modules_.state_dict()[key]), key
    assert torch.equal(full.sample(8, seed=0)[0], resumed.sample(8, seed=0)[0])


def test_resume_refuses_a_checkpoint_of_another_model(data, device, tmp_path):
    CVAE(epochs=1, checkpoint_dir=str(tmp_path), device=device, **SMALL).fit(data)
    other = CVAE(epochs=2, checkpoint_dir=str(tmp_path), resume=True, device=device, **SMALL)
    other.set_params(latent_dim=6)
    with pytest.raises(CheckpointError, match="another model or dataset"):
        other.fit(data)
    wider = ImageDataset(torch.rand(40, 1, 16, 16), torch.arange(2).repeat(20))
    again = CVAE(epochs=2, checkpoint_dir=str(tmp_path), resume=True, device=device, **SMALL)
    with pytest.raises(CheckpointError, match="another model or dataset"):
        again.fit(wider)


def test_resume_refuses_a_damaged_checkpoint(data, device, tmp_path):
    CVAE(epochs=1, checkpoint_dir=str(tmp_path), device=device, **SMALL).fit(data)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    model = CVAE(epochs=2, checkpoint_dir=str(tmp_path), resume=True, device=device, **SMALL)
    with pytest.raises(CheckpointError, match="unreadable"):
        model.fit(data)


def test_resume_needs_a_checkpoint_dir(data):
    with pytest.raises(InvalidParameterError, match="checkpoint_dir"):
        CVAE(epochs=1, resume=True, **SMALL).fit(data)


# -- early stopping ---------------------------------------------------------------------------
def test_early_stopping_stops_and_keeps_the_best_weights(data, device):
    model = CVAE(
        epochs=60, early_stopping=2, validation_fraction=0.25, lr=3e-2, device=device, **SMALL
    ).fit(data)
    val = [r["val_loss"] for r in model.history]
    assert len(val) < 60  # random images: the validation loss stops improving early
    best = min(val)
    assert val.index(best) == len(val) - 3  # then two epochs without improvement
    # the kept weights are the best epoch's: their validation loss is the best one recorded
    train_idx, val_idx = validation_split(data.labels, 0.25, 0)
    net = model.modules_["net"]
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        again = net.per_sample_loss(data.images[val_idx], data.labels[val_idx], gen, 1.0).mean()
    assert float(again) == pytest.approx(best, rel=1e-5)


def test_early_stopping_needs_a_validation_share(data):
    with pytest.raises(InvalidParameterError, match="validation_fraction"):
        CVAE(epochs=2, early_stopping=2, validation_fraction=0.0, **SMALL).fit(data)


def test_validation_split_is_stratified_and_keeps_singletons():
    labels = torch.tensor([0] * 10 + [1] * 4 + [2])
    train, val = validation_split(labels, 0.3, seed=0)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(15))
    assert torch.bincount(labels[val], minlength=3).tolist() == [3, 1, 0]
    assert torch.equal(val, validation_split(labels, 0.3, seed=0)[1])


def test_divergence_raises_and_leaves_no_half_fitted_model(data):
    model = CVAE(epochs=3, lr=1e30, **{**SMALL, "hidden_dims": (8,)})
    with pytest.raises(TrainingDivergedError, match="diverged at epoch"):
        model.fit(data)
    with pytest.raises(NotFittedError):
        model.sample(1)


def test_training_settings_declare_the_shared_training_parameters_once():
    declared = params_of(TrainingSettings)
    signature = inspect.signature(TorchGenerator.__init__).parameters
    assert list(declared) == [name for name in signature if name != "self"]
    for name, param in declared.items():
        assert param.default == signature[name].default and param.doc and param.rule
    assert "True, False, 'bf16', 'fp16'" in str(declared["amp"].rule)
    assert declared["dp"].rule(synthaug.DP(epsilon=1.0)) is None
    assert declared["dp"].rule(1.0) == "None or synthaug.DP(epsilon=...)"


# -- step budgets and batch plans ------------------------------------------------------------
def _linear_run(steps, plan, ckpt=None, resume=False, lr=0.1):
    """A linear model trained for ``steps`` steps on 10 samples, its step drawing noise too."""
    torch.manual_seed(0)  # test-only: the same initial weights for every run
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    seen: list[list[int]] = []

    def step(xb, yb):
        seen.append(xb[:, 0].long().tolist())
        noise = torch.randn(len(xb), generator=gen)  # draws between batch draws
        loss = (net(xb).squeeze(1) - yb - noise).pow(2).mean()
        optimizer_step(opt, loss)
        return {"loss": loss}

    x = torch.stack([torch.arange(10.0), torch.rand(10, generator=torch.Generator())], 1)
    settings = TrainingSettings(
        batch_size=4, verbose=False, checkpoint_dir=ckpt, checkpoint_every=1, resume=resume
    )
    trainer = Trainer(settings, device="cpu", steps=steps, batches=plan, record_every=2)
    history = trainer.run(step, x, torch.rand(10), gen, [], modules=net, optimizers={"n": opt})
    return history, net.state_dict(), seen


def test_a_step_budget_records_every_block_and_resumes_mid_epoch_exactly(tmp_path):
    # 10 samples in batches of 4 make epochs of 3 steps: the interrupted run stops at step 4,
    # inside the second permutation, which the resumed run must finish.
    full, weights, seen = _linear_run(10, Shuffled())
    assert [r["steps"] for r in full] == [2, 4, 6, 8, 10] and len(seen) == 10
    assert all(sorted(sum(seen[e : e + 3], [])) == list(range(10)) for e in (0, 3, 6))
    _linear_run(4, Shuffled(), ckpt=str(tmp_path))
    resumed, resumed_weights, rest = _linear_run(10, Shuffled(), ckpt=str(tmp_path), resume=True)
    assert resumed == full and rest == seen[4:]
    for key, value in weights.items():
        assert torch.equal(resumed_weights[key], value)


def test_batches_drawn_with_replacement_and_given_indices():
    _, _, seen = _linear_run(5, WithReplacement())
    gen = torch.Generator().manual_seed(0)
    first = torch.randint(10, (4,), generator=gen)
    assert seen[0] == first.tolist() and len(seen) == 5
    rows = torch.arange(12).remainder(10).view(3, 4)
    history, _, seen = _linear_run(3, Indices(rows))
    assert seen == rows.tolist() and [r["steps"] for r in history] == [2, 3]


def test_a_non_finite_loss_in_a_step_budget_names_the_step():
    with pytest.raises(TrainingDivergedError, match="diverged by step 2"):
        _linear_run(6, WithReplacement(), lr=1e30)


# -- architectures ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, kind, n_down, grid",
    [
        ((30,), "mlp", 0, (1, 1)),
        ((1, 8, 8), "mlp", 0, (1, 1)),
        ((1, 15, 15), "mlp", 0, (1, 1)),
        ((1, 16, 16), "conv", 2, (4, 4)),
        ((3, 32, 32), "conv", 3, (4, 4)),
        ((1, 64, 64), "conv", 4, (4, 4)),
        ((3, 128, 128), "conv", 5, (4, 4)),
        ((1, 32, 64), "conv", 3, (4, 8)),
        ((1, 18, 18), "mlp", 0, (1, 1)),
    ],
)
def test_architecture_follows_the_data_shape(shape, kind, n_down, grid):
    arch = choose_architecture(shape)
    assert (arch.kind, arch.n_down, arch.grid) == (kind, n_down, grid)


def test_cvae_reports_its_architecture(device):
    ds = ImageDataset(torch.rand(8, 1, 16, 16), torch.arange(2).repeat(4))
    model = CVAE(epochs=1, width=4, device=device, **SMALL).fit(ds)
    assert model.architecture_ == "conv"


# -- CGAN ---------------------------------------------------------------------------------------
def test_diff_augment_is_seeded_and_keeps_shape():
    x = torch.rand(6, 3, 16, 16)
    a = diff_augment(x, torch.Generator().manual_seed(0))
    b = diff_augment(x, torch.Generator().manual_seed(0))
    c = diff_augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    # differentiable: gradients reach the input
    x.requires_grad_(True)
    diff_augment(x, torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_cgan_with_diffaugment_trains_deterministically(data, device):
    a = CGAN(epochs=2, diffaugment=True, device=device, seed=3, **SMALL).fit(data)
    b = CGAN(epochs=2, diffaugment=True, device=device, seed=3, **SMALL).fit(data)
    assert torch.equal(a.sample(6, seed=0)[0], b.sample(6, seed=0)[0])
    assert set(a.history[0]) == {"epoch", "d_loss", "g_loss"}


def test_cgan_samples_from_the_ema_generator(data, device):
    model = CGAN(epochs=2, device=device, **SMALL).fit(data)
    assert int(model.modules_["generator_ema"].updates) == 2 * 3  # 2 epochs x 3 batches
    raw = CGAN(epochs=2, ema_decay=0.0, device=device, **SMALL).fit(data)
    assert not torch.equal(model.sample(4, seed=0)[0], raw.sample(4, seed=0)[0])


# -- PerClass --------------------------------------------------------------------------------
def test_perclass_trains_one_model_per_class_and_saves_them_together(data, device, tmp_path):
    model = PerClass(CVAE(epochs=2, device=device, **SMALL)).fit(data)
    assert sorted(model.members_) == [0, 1]
    assert all(type(m) is CVAE and m.n_classes_ == 1 for m in model.members_.values())
    assert set(model.history[0]) == {
        "epoch",
        "loss_0",
        "recon_0",
        "kl_0",
        "loss_1",
        "recon_1",
        "kl_1",
    }
    path = model.save(tmp_path / "perclass.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["perclass.safetensors"]
    loaded = synthaug.load(path, device=device)
    assert isinstance(loaded, PerClass) and isinstance(loaded.estimator, CVAE)
    assert loaded.get_params()["estimator__latent_dim"] == 4
    assert torch.equal(model.sample(10, seed=4)[0], loaded.sample(10, seed=4)[0])


def test_perclass_samples_each_class_from_its_own_model(data, device):
    model = PerClass(CGAN(epochs=1, device=device, **SMALL)).fit(data)
    images, labels = model.sample(6, y=[1, 0, 1, 0, 0, 1], seed=0)
    only0, _ = model.sample(3, y=0, seed=0)
    assert labels.tolist() == [1, 0, 1, 0, 0, 1]
    # with the classes drawn in a fixed order, class 0's draws come first whatever the request
    assert torch.equal(images[[1, 3, 4]], only0)


def test_perclass_bad_parameters(data):
    with pytest.raises(InvalidParameterError, match="estimator"):
        PerClass("diffusion").fit(data)
    with pytest.raises(InvalidParameterError, match="estimator"):
        PerClass(PerClass(CVAE())).fit(data)
    with pytest.raises(InvalidParameterError, match="no parameter"):
        create_generator("perclass-vae", epochs=1, depth=3)
    with pytest.raises(InvalidParameterError, match="n_jobs"):
        PerClass(CVAE(epochs=1, verbose=False), n_jobs=0).fit(data)
    with pytest.raises(InvalidParameterError, match="latent_dim"):
        PerClass(CGAN(epochs=1, verbose=False, latent_dim=0)).fit(data)


def test_perclass_presets_take_the_inner_parameters_flat(data):
    vae = create_generator("perclass-vae", latent_dim=8, n_jobs=2)
    assert isinstance(vae.estimator, CVAE) and vae.estimator.latent_dim == 8 and vae.n_jobs == 2
    # One default per base model: the per-class GAN trains as long as a CGAN does.
    assert create_generator("perclass-gan").estimator.epochs == CGAN().epochs
    assert create_generator("perclass-vae").estimator.epochs == CVAE().epochs
    # A registered name as the estimator: that generator with its defaults.
    model = PerClass("cvae").set_params(n_jobs=1)
    assert model.get_params()["estimator"] == "cvae"


@pytest.mark.slow
def test_perclass_parallel_processes(data):
    serial = PerClass(CVAE(epochs=2, device="cpu", **SMALL)).fit(data)
    parallel = PerClass(CVAE(epochs=2, device="cpu", **SMALL), n_jobs=2).fit(data)
    a, b = serial.sample(20, seed=0)[0], parallel.sample(20, seed=0)[0]
    assert torch.allclose(a, b, atol=1e-4)
