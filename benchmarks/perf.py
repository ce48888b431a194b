"""Training and sampling speed of synthaug's generators, against a bare PyTorch loop.

For CVAE, CGAN and PerClass (VAE base) on digits (8x8) and on synthetic 64x64 one-channel
images: training throughput (images/s) through ``fit``, the same for a bare PyTorch loop over the
same network on pre-loaded tensors (measured in this run, alternating with ``fit``, best of
``--repeats``), their ratio, sampling throughput, peak memory and wall time to a fixed number
of epochs. Prints a table and writes JSON. Each row runs in a fresh process, so its peak
memory is not hidden by memory an earlier row left in the allocator's cache.

    PYTHONPATH=. python benchmarks/perf.py [--quick] [--device cpu] [--out perf.json]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F

import synthaug
from synthaug.data import ImageDataset, load_digits
from synthaug.generators import create_generator
from synthaug.nn import seeded

GENERATORS = ("cvae", "cgan", "perclass-vae")


def blobs_64(n: int, seed: int = 0) -> ImageDataset:
    """``n`` 1x64x64 images in 4 classes: a Gaussian blob whose position depends on the class."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    centres = torch.tensor([[16.0, 16.0], [16.0, 48.0], [48.0, 16.0], [48.0, 48.0]])[labels]
    centres = centres + torch.randn(n, 2, generator=g) * 3
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    images = torch.exp(-d2 / (2 * 8.0**2)).unsqueeze(1)
    return ImageDataset(images.clamp(0, 1), labels, ["nw", "ne", "sw", "se"])


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
    model = None
    bare = None
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
        sample_times.append(time.perf_counter() - t0)
    images = epochs * len(data)
    fit_ips, bare_ips = images / min(fit_times), images / min(bare_times)
    return {
        "generator": name,
        "data": label,
        "n_train": len(data),
        "epochs": epochs,
        "fit_wall_s": min(fit_times),
        "train_img_per_s": fit_ips,
        "bare_loop_img_per_s": bare_ips,
        "ratio_vs_bare": fit_ips / bare_ips,
        "sample_img_per_s": n_sample / min(sample_times),
        "peak_memory_mib": peak,
        "architecture": getattr(model, "architecture_", None)
        or ("conv" if data.is_image and min(data.sample_shape[1:]) >= 16 else "mlp"),
    }


def measure_fresh(
    name: str,
    label: str,
    n_images: int,
    epochs: int,
    n_sample: int,
    repeats: int,
    device: str,
    threads: int,
) -> dict:
    """:func:`measure` in this process, building its data here (the body of a fresh process)."""
    torch.set_num_threads(threads)
    data = load_digits() if label == "digits8x8" else blobs_64(n_images)
    return measure(name, data, label, epochs, n_sample, repeats, torch.device(device))


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'generator':<14}{'data':<11}{'arch':<6}{'epochs':>7}{'wall s':>8}{'train img/s':>13}"
        f"{'bare img/s':>12}{'ratio':>7}{'sample img/s':>14}{'peak MiB':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['generator']:<14}{r['data']:<11}{r['architecture']:<6}{r['epochs']:>7}"
            f"{r['fit_wall_s']:>8.2f}{r['train_img_per_s']:>13,.0f}{r['bare_loop_img_per_s']:>12,.0f}"
            f"{r['ratio_vs_bare']:>7.2f}{r['sample_img_per_s']:>14,.0f}{r['peak_memory_mib']:>10.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, images and repeats")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--generators", nargs="+", default=list(GENERATORS))
    parser.add_argument("--out", default="perf.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 2)
    settings = [
        ("digits8x8", 1797, 2 if args.quick else 5, 50_000 if args.quick else 200_000),
        (
            "blobs64x64",
            128 if args.quick else 256,
            1 if args.quick else 2,
            2_000 if args.quick else 10_000,
        ),
    ]
    rows = []
    # spawn, not fork: a fresh interpreter per row, so memory cached by one row's allocator
    # cannot make the next row's peak read low.
    ctx = multiprocessing.get_context("spawn")
    for name in args.generators:
        for label, n_images, epochs, n_sample in settings:
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                row = pool.submit(
                    measure_fresh,
                    name,
                    label,
                    n_images,
                    epochs,
                    n_sample,
                    repeats,
                    str(device),
                    torch.get_num_threads(),
                ).result()
            rows.append(row)
            print(format_table([row]).splitlines()[-1], flush=True)
    result = {
        "config": {
            "quick": args.quick,
            "repeats": repeats,
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
            "machine": platform.platform(),
            "torch": torch.__version__,
            "synthaug": synthaug.__version__,
        },
        "rows": rows,
    }
    print()
    print(format_table(rows))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, default=lambda v: None if math.isnan(v) else v)
    print(f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
