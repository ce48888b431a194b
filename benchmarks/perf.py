"""Training and sampling speed of synthaug's generators, against the machine's ceiling.

For CVAE, CGAN and PerClass (VAE base) on digits (8x8) and on synthetic 64x64 and 128x128
one-channel images: training throughput (images/s) through ``fit`` and through a bare PyTorch
loop over the same networks on pre-loaded tensors (alternating, best of ``--repeats``),
sampling throughput, the networks' FLOPs per image (counted by ``torch.utils.flop_counter``,
not estimated), the GFLOP/s that makes, a dense matmul's GFLOP/s measured in the same process
just before the row (the ceiling) and the fraction of it; user and system CPU seconds and peak
memory. Then the cost of a differentially private step against a plain one (same model, same
batch size) and the on-demand data rows (a plain shuffled DataLoader over SyntheticDataset
and pregeneration, against ``sample()``). Each row runs in a fresh process, so its peak memory
is not hidden by memory an earlier row left in the allocator's cache. Prints tables and
writes JSON. The machine may be shared: compare figures within one run.

Before all of that, the command line's start-up: ``synthaug --help`` (which imports no torch)
against a bare interpreter, min of 5 fresh processes, with the load average
(``--cli-start-only`` runs just that).

    PYTHONPATH=. python benchmarks/perf.py [--quick] [--device cpu|cuda] [--out perf.json]
    PYTHONPATH=. python benchmarks/perf.py --quick --loader-only    # the DataLoader row alone
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

import synthaug
from synthaug.augment import SyntheticDataset
from synthaug.data import ImageDataset, load_digits
from synthaug.generators import create_generator
from synthaug.nn import seeded

GENERATORS = ("cvae", "cgan", "perclass-vae")


def blobs(n: int, side: int = 64, seed: int = 0) -> ImageDataset:
    """``n`` 1 x side x side images in 4 classes: a Gaussian blob placed by the class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    q = side / 4
    centres = torch.tensor([[q, q], [q, 3 * q], [3 * q, q], [3 * q, 3 * q]])[labels]
    centres = centres + torch.randn(n, 2, generator=g) * (side / 21)
    yy, xx = torch.meshgrid(torch.arange(float(side)), torch.arange(float(side)), indexing="ij")
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    images = torch.exp(-d2 / (2 * (side / 8) ** 2)).unsqueeze(1)
    return ImageDataset(images.clamp(0, 1), labels, ["nw", "ne", "sw", "se"])


def blobs_64(n: int, seed: int = 0) -> ImageDataset:
    """``n`` 1x64x64 blob images (:func:`blobs`)."""
    return blobs(n, 64, seed)


def matmul_gflops(
    device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = 0.6
) -> float:
    """Best GFLOP/s of a dense square matmul here and now: the ceiling (1024 on a CPU, 8192
    on a GPU, which a small one leaves idle)."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    best, end = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / 4)
    return 2 * size**3 / best / 1e9


# -- the command line's start-up ---------------------------------------------------------------
def measure_cli_start(runs: int = 5) -> dict:
    """Seconds ``synthaug --help`` and ``synthaug train --help`` take, each in a fresh
    interpreter (min and median of ``runs``), beside a bare ``python -c pass``: the start every
    command pays before its work. The load average is taken before and after, since on a shared
    machine a busy minute is slower."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "help": [sys.executable, "-m", "synthaug.cli", "--help"],
        "train_help": [sys.executable, "-m", "synthaug.cli", "train", "--help"],
    }
    row: dict = {"runs": runs, "load_average_start": os.getloadavg()}
    for name, command in commands.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        row[f"{name}_s_min"] = min(times)
        row[f"{name}_s_median"] = sorted(times)[len(times) // 2]
    row["load_average_end"] = os.getloadavg()
    return row


def format_cli_start(r: dict) -> str:
    return (
        f"command-line start (min of {r['runs']} fresh processes): synthaug --help "
        f"{r['help_s_min']:.2f} s, synthaug train --help {r['train_help_s_min']:.2f} s, "
        f"python -c pass {r['python_s_min']:.2f} s (medians {r['help_s_median']:.2f}, "
        f"{r['train_help_s_median']:.2f}, {r['python_s_median']:.2f} s); load average "
        f"{r['load_average_start'][0]:.2f} before, {r['load_average_end'][0]:.2f} after"
    )


def flops_per_image(run: Callable[[], object], n_images: int) -> float:
    """FLOPs ``run()`` makes (torch's counter: matmuls and convolutions) per image."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops() / n_images


class CPUTime:
    """User and system CPU seconds of this process during the block."""

    def __enter__(self) -> CPUTime:
        self._start = resource.getrusage(resource.RUSAGE_SELF)
        return self

    def __exit__(self, *exc: object) -> None:
        end = resource.getrusage(resource.RUSAGE_SELF)
        self.user = end.ru_utime - self._start.ru_utime
        self.system = end.ru_stime - self._start.ru_stime


class PeakMemory:
    """Peak resident memory above the starting level (CPU), or peak CUDA allocation."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.base = self.peak = _rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss())

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- bare loops: the same networks and losses, nothing else --------------------------------------
def bare_cvae(net, x, y, epochs, batch_size, lr, device) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator(device=device).manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen, device=device)
        for s in range(0, len(x), batch_size):
            idx = perm[s : s + batch_size]
            loss = net.loss(x[idx], y[idx], gen, 1.0)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def bare_cgan(modules, x, y, epochs, batch_size, lr, device, latent_dim) -> None:
    g, d, ema = modules["generator"], modules["discriminator"], modules["generator_ema"].net
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator(device=device).manual_seed(0)
    ema_p, g_p = list(ema.parameters()), list(g.parameters())
    ema_b, g_b = list(ema.buffers()), list(g.buffers())
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen, device=device)
        for s in range(0, len(x), batch_size):
            idx = perm[s : s + batch_size]
            xb, yb = x[idx], y[idx]
            z = torch.randn((len(xb), latent_dim), generator=gen, device=device)
            fake = g(z, yb)
            d_loss = F.relu(1 - d(xb, yb)).mean() + F.relu(1 + d(fake.detach(), yb)).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = -d(fake, yb).mean()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            with torch.no_grad():
                torch._foreach_lerp_(ema_p, g_p, 0.001)
                torch._foreach_copy_(ema_b, g_b)


def bare_loop(model, data: ImageDataset, epochs: int, device: torch.device) -> Callable[[], None]:
    """A closure that trains fresh copies of ``model``'s networks with a bare loop."""
    x_all, y_all = data.images.to(device), data.labels.to(device)

    def run() -> None:
        with seeded(0):
            if model.registry_name.startswith("perclass"):
                for label, member in model.members_.items():
                    keep = y_all == label
                    x, y = x_all[keep], torch.zeros_like(y_all[keep])
                    net = member._build_modules().to(device)["net"]
                    bare_cvae(net, x, y, epochs, member.batch_size, member.lr, device)
            elif model.registry_name == "cvae":
                net = model._build_modules().to(device)["net"]
                bare_cvae(net, x_all, y_all, epochs, model.batch_size, model.lr, device)
            else:
                modules = model._build_modules().to(device)
                bare_cgan(
                    modules,
                    x_all,
                    y_all,
                    epochs,
                    model.batch_size,
                    model.lr,
                    device,
                    model.latent_dim,
                )
        _sync(device)

    return run


def train_step_flops(model, data: ImageDataset, device: torch.device) -> float:
    """FLOPs per image of one training step of ``model``'s networks (forward and backward)."""
    batch = data.subset(torch.arange(min(len(data), 16)))
    return flops_per_image(bare_loop(model, batch, 1, device), len(batch))


def measure(
    name: str,
    data: ImageDataset,
    label: str,
    epochs: int,
    n_sample: int,
    repeats: int,
    device: torch.device,
) -> dict:
    params = {"epochs": epochs, "device": str(device), "verbose": False, "seed": 0}
    fit_times, bare_times, peak = [], [], 0.0
    # Untimed warm-up on a few batches: one-time costs (thread pools, allocator, lazy imports)
    # would otherwise fall on whichever loop runs first.
    warm = data.subset(torch.arange(min(len(data), 128)))
    warm_model = create_generator(name, **{**params, "epochs": 1}).fit(warm)
    bare_loop(warm_model, warm, 1, device)()
    # On a GPU the networks train under bfloat16 autocast (amp=True): that matmul is the
    # ceiling, float32's is reported beside it.
    ceiling = matmul_gflops(device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    ceiling_fp32 = matmul_gflops(device) if device.type == "cuda" else ceiling
    model = None
    bare = None
    with CPUTime() as cpu:
        for _ in range(repeats):
            with PeakMemory(device) as mem:
                t0 = time.perf_counter()
                model = create_generator(name, **params).fit(data)
                _sync(device)
                fit_times.append(time.perf_counter() - t0)
            peak = max(peak, mem.mib)
            bare = bare or bare_loop(model, data, epochs, device)
            t0 = time.perf_counter()
            bare()
            bare_times.append(time.perf_counter() - t0)
        model.sample(min(n_sample, 1024), seed=0)  # warm-up
        sample_times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            model.sample(n_sample, seed=r)
            _sync(device)
            sample_times.append(time.perf_counter() - t0)
    train_flops = train_step_flops(model, data, device)
    sample_flops = flops_per_image(lambda: model.sample(64, seed=0), 64)
    images = epochs * len(data)
    fit_ips, bare_ips = images / min(fit_times), images / min(bare_times)
    sample_ips = n_sample / min(sample_times)
    return {
        "generator": name,
        "data": label,
        "n_train": len(data),
        "epochs": epochs,
        "fit_wall_s": min(fit_times),
        "train_img_per_s": fit_ips,
        "bare_loop_img_per_s": bare_ips,
        "ratio_vs_bare": fit_ips / bare_ips,
        "sample_img_per_s": sample_ips,
        "train_mflop_per_img": train_flops / 1e6,
        "sample_mflop_per_img": sample_flops / 1e6,
        "train_gflops": fit_ips * train_flops / 1e9,
        "sample_gflops": sample_ips * sample_flops / 1e9,
        "matmul_gflops": ceiling,
        "matmul_fp32_gflops": ceiling_fp32,
        "train_fraction": fit_ips * train_flops / 1e9 / ceiling,
        "sample_fraction": sample_ips * sample_flops / 1e9 / ceiling,
        "user_s": cpu.user,
        "system_s": cpu.system,
        "peak_memory_mib": peak,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "architecture": getattr(model, "architecture_", None)
        or ("conv" if data.is_image and min(data.sample_shape[1:]) >= 16 else "mlp"),
    }


def make_data(label: str, n_images: int) -> ImageDataset:
    if label == "digits8x8":
        return load_digits()
    return blobs(n_images, int(label.removeprefix("blobs").split("x")[0]))


def _start_row(threads: int, allocator: str) -> None:
    torch.set_num_threads(threads)
    if allocator == "tuned":
        synthaug.tune_allocator()


def measure_fresh(
    name: str,
    label: str,
    n_images: int,
    epochs: int,
    n_sample: int,
    repeats: int,
    device: str,
    threads: int,
    allocator: str = "tuned",
) -> dict:
    """:func:`measure` in this process, building its data here (the body of a fresh process)."""
    _start_row(threads, allocator)
    row = measure(
        name, make_data(label, n_images), label, epochs, n_sample, repeats, torch.device(device)
    )
    return {**row, "allocator": allocator}


def measure_dp(label: str, n_images: int, device: str, threads: int, allocator: str) -> dict:
    """A private CVAE step against a plain one: same networks, same (expected) batch size.

    Each is timed as ``fit(epochs=3)`` minus ``fit(epochs=1)``, so the noise calibration and
    set-up cancel, divided by the steps of the two extra epochs.
    """
    _start_row(threads, allocator)
    data = make_data(label, n_images)
    dev = torch.device(device)
    params = {"device": device, "verbose": False, "seed": 0, "batch_size": 64}

    def fit_seconds(epochs: int, dp: synthaug.DP | None) -> float:
        t0 = time.perf_counter()
        create_generator("cvae", epochs=epochs, dp=dp, **params).fit(data)
        _sync(dev)
        return time.perf_counter() - t0

    dp = synthaug.DP(epsilon=10.0)
    fit_seconds(1, dp)  # warm-up: Opacus imports, allocator
    steps_dp = 2 * max(1, round(len(data) / 64))
    steps_plain = 2 * math.ceil(len(data) / 64)
    with CPUTime() as cpu:
        plain = min(fit_seconds(3, None) - fit_seconds(1, None) for _ in range(2)) / steps_plain
        private = min(fit_seconds(3, dp) - fit_seconds(1, dp) for _ in range(2)) / steps_dp
    return {
        "data": label,
        "n_train": len(data),
        "plain_step_ms": plain * 1e3,
        "dp_step_ms": private * 1e3,
        "dp_ratio": private / plain,
        "user_s": cpu.user,
        "system_s": cpu.system,
        "allocator": allocator,
    }


def measure_data(n: int, device: str, threads: int, allocator: str) -> dict:
    """On-demand and pregenerated SyntheticDataset against ``sample()`` on the digits CVAE.

    The DataLoader row is the plain idiom, ``DataLoader(dataset, batch_size=64,
    shuffle=True)`` over a 10-million-item on-demand set, against as many direct
    ``sample(64)`` calls (the same work per batch), the two timed in alternation so that a
    shared machine's load falls on both alike; and against one ``sample(n)``.
    """
    _start_row(threads, allocator)
    model = create_generator("cvae", epochs=1, device=device, verbose=False, seed=0)
    model.fit(load_digits())
    model.sample(2048, seed=0)
    per_class = n // len(model.classes_)
    batches = n // 64

    def seconds(run: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0

    sample_s = min(seconds(lambda: model.sample(n, seed=1)) for _ in range(2))
    pregen_s = min(
        seconds(lambda: SyntheticDataset(model, n_per_class=per_class, verbose=False))
        for _ in range(2)
    )
    lazy = SyntheticDataset(model, n_per_class=1_000_000, pregenerate=False)
    t0 = time.perf_counter()
    loader = iter(DataLoader(lazy, batch_size=64, shuffle=True))
    next(loader)  # the sampler's permutation of all 10 million indices is drawn here
    first_s = time.perf_counter() - t0
    loader_s, sample64_s = math.inf, math.inf
    for _ in range(3):
        loader_s = min(loader_s, seconds(lambda: sum(1 for _ in itertools.islice(loader, batches))))
        sample64_s = min(
            sample64_s, seconds(lambda: [model.sample(64, seed=i) for i in range(batches)])
        )
    return {
        "n": n,
        "sample_img_per_s": n / sample_s,
        "pregenerate_img_per_s": len(model.classes_) * per_class / pregen_s,
        "pregenerate_fraction": (len(model.classes_) * per_class / pregen_s) / (n / sample_s),
        "sample64_img_per_s": batches * 64 / sample64_s,
        "loader_img_per_s": batches * 64 / loader_s,
        "loader_cost_vs_sample64": loader_s / sample64_s,
        "loader_cost_vs_sample": loader_s / sample_s * n / (batches * 64),
        "first_shuffled_batch_s": first_s,
        "on_demand_items": len(lazy),
    }


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'generator':<13}{'data':<12}{'arch':<5}{'train/s':>9}{'bare/s':>9}{'ratio':>6}"
        f"{'sample/s':>10}{'MF train':>9}{'MF samp':>8}{'GF/s tr':>8}{'GF/s sa':>8}"
        f"{'ceiling':>8}{'tr frac':>8}{'sa frac':>8}{'user s':>7}{'sys s':>6}{'RSS MiB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        data = r["data"] + ("*" if r.get("allocator") == "default" else "")
        lines.append(
            f"{r['generator']:<13}{data:<12}{r['architecture']:<5}"
            f"{r['train_img_per_s']:>9,.0f}{r['bare_loop_img_per_s']:>9,.0f}"
            f"{r['ratio_vs_bare']:>6.2f}{r['sample_img_per_s']:>10,.0f}"
            f"{r['train_mflop_per_img']:>9.2f}{r['sample_mflop_per_img']:>8.2f}"
            f"{r['train_gflops']:>8.1f}{r['sample_gflops']:>8.1f}{r['matmul_gflops']:>8.1f}"
            f"{r['train_fraction']:>8.0%}{r['sample_fraction']:>8.0%}"
            f"{r['user_s']:>7.1f}{r['system_s']:>6.1f}{r['max_rss_mib']:>8.0f}"
        )
    return "\n".join(lines)


def format_dp(rows: list[dict]) -> str:
    lines = [
        f"{'DP step (cvae)':<16}{'plain ms':>10}{'dp ms':>10}{'dp/plain':>10}{'user s':>8}{'sys s':>7}"
    ]
    for r in rows:
        lines.append(
            f"{r['data']:<16}{r['plain_step_ms']:>10.1f}{r['dp_step_ms']:>10.1f}"
            f"{r['dp_ratio']:>10.2f}{r['user_s']:>8.1f}{r['system_s']:>7.1f}"
        )
    return "\n".join(lines)


def format_data(r: dict) -> str:
    return (
        f"on-demand data (digits cvae, {r['n']:,} images): sample() {r['sample_img_per_s']:,.0f}"
        f" img/s; pregeneration {r['pregenerate_img_per_s']:,.0f} img/s"
        f" ({r['pregenerate_fraction']:.0%} of sample()); DataLoader(batch_size=64,"
        f" shuffle=True) over a {r['on_demand_items']:,}-item on-demand set"
        f" {r['loader_img_per_s']:,.0f} img/s against sample(64) {r['sample64_img_per_s']:,.0f}"
        f" img/s: {r['loader_cost_vs_sample64']:.2f}x the time of sample(64) a batch,"
        f" {r['loader_cost_vs_sample']:.2f}x that of one sample(n); first batch"
        f" {r['first_shuffled_batch_s']:.2f} s"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, images and repeats")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS))
    parser.add_argument(
        "--allocator",
        choices=["tuned", "default"],
        default="tuned",
        help="tuned: synthaug.tune_allocator() in every row (the CLI's setting); default: "
        "glibc as it comes. A full run adds one default-allocator row for comparison",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        default=["digits8x8", "blobs64x64", "blobs128x128"],
        help="which data rows to run",
    )
    parser.add_argument(
        "--no-extras", action="store_true", help="skip the DP and on-demand data rows"
    )
    parser.add_argument(
        "--loader-only",
        action="store_true",
        help="run only the on-demand data row (SyntheticDataset under a shuffled DataLoader)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per row (default: torch's)"
    )
    parser.add_argument(
        "--cli-start-only", action="store_true", help="only time the command line's start-up"
    )
    parser.add_argument("--out", default="perf.json")
    args = parser.parse_args(argv)
    # First, before the heavy rows warm or load the machine.
    cli_row = measure_cli_start()
    print(format_cli_start(cli_row), flush=True)
    if args.cli_start_only:
        return {"cli_start": cli_row}
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 2)
    q = args.quick
    # (label, training images, epochs, samples, generators)
    settings = [
        ("digits8x8", 1797, 2 if q else 3, 50_000 if q else 100_000, args.generators),
        ("blobs64x64", 64 if q else 128, 1 if q else 2, 500 if q else 2_000, args.generators),
        ("blobs128x128", 32 if q else 64, 1, 200 if q else 500, ["cvae", "cgan"]),
    ]
    if device.type == "cuda":  # a GPU wants bigger batches of work to be measured at all
        settings = [
            ("digits8x8", 1797, 5, 1_000_000, args.generators),
            ("blobs64x64", 4096, 2, 50_000, args.generators),
            ("blobs128x128", 2048, 2, 20_000, ["cvae", "cgan"]),
        ]
    jobs = [
        (name, label, n_images, epochs, n_sample, args.allocator)
        for label, n_images, epochs, n_sample, names in settings
        for name in names
        if name in args.generators and label in args.data and not args.loader_only
    ]
    if not q and args.allocator == "tuned" and device.type == "cpu" and jobs and not args.no_extras:
        label, n_images, epochs, n_sample, _ = settings[1]
        jobs.append(("cvae", label, n_images, epochs, n_sample, "default"))
    threads = args.threads or torch.get_num_threads()
    rows = []
    # spawn, not fork: a fresh interpreter per row, so memory cached by one row's allocator
    # cannot make the next row's peak read low.
    ctx = multiprocessing.get_context("spawn")

    def fresh(fn: Callable[..., dict], *fn_args: object) -> dict:
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            return pool.submit(fn, *fn_args).result()

    started = time.perf_counter()
    for name, label, n_images, epochs, n_sample, allocator in jobs:
        row = fresh(
            measure_fresh,
            name,
            label,
            n_images,
            epochs,
            n_sample,
            repeats,
            str(device),
            threads,
            allocator,
        )
        rows.append(row)
        print(format_table([row]).splitlines()[-1], flush=True)
    dp_rows, data_row = [], None
    if not args.no_extras:
        if not args.loader_only:
            dp_rows = [
                fresh(measure_dp, label, n, str(device), threads, args.allocator)
                for label, n in (("digits8x8", 1797), ("blobs64x64", 64))
            ]
            print(format_dp(dp_rows), flush=True)
        n_data = 20_000 if q else 100_000
        data_row = fresh(measure_data, n_data, str(device), threads, args.allocator)
        print(format_data(data_row), flush=True)
    result = {
        "config": {
            "quick": args.quick,
            "repeats": repeats,
            "device": str(device),
            "torch_threads": threads,
            "cpu_count": os.cpu_count(),
            "load_average_end": os.getloadavg(),
            "wall_s": time.perf_counter() - started,
            "machine": platform.platform(),
            "torch": torch.__version__,
            "synthaug": synthaug.__version__,
        },
        "cli_start": cli_row,
        "rows": rows,
        "dp": dp_rows,
        "data": data_row,
    }
    print()
    if rows:
        print(format_table(rows))
        print()
    if dp_rows:
        print(format_dp(dp_rows))
    if data_row is not None:
        print(format_data(data_row))
    print(f"load average at the end {os.getloadavg()}; {result['config']['wall_s']:.0f} s")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, default=lambda v: None if math.isnan(v) else v)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
