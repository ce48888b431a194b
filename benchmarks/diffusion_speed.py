"""Speed of the diffusion family (``ddpm``) on digits (8x8), against the machine's ceiling.

Training: images/s through ``fit`` (its set-up and the check after it included) and through
a bare PyTorch loop over the same U-Net and loss on pre-loaded tensors. Sampling: images/s of
``sample`` at 10, 25, 50 and 100 steps of DPM-Solver++ with guidance (two network passes per
step, batched as one forward) and at 25 without. ``MF`` is the U-Net's MFLOPs per image,
counted by ``torch.utils.flop_counter`` (one training step's forward and backward; a whole
sample's passes); ``frac`` is the GFLOP/s that makes over a dense 1024x1024 float32 matmul's
GFLOP/s, measured in the same process just before the row (on CUDA, training runs under
``fit``'s bfloat16 autocast, ``amp=True``, and is set against a bfloat16 matmul; sampling
runs in float32). The machine may be shared: the load average is printed; compare figures
within one run.

    PYTHONPATH=. python benchmarks/diffusion_speed.py [--threads 1] [--epochs 2] [--out speed.json]
    PYTHONPATH=. python benchmarks/diffusion_speed.py --device cuda --samples 2048   # gpu_check.sh
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import torch
import torch.nn.functional as F
from perf import flops_per_image, matmul_gflops

from synthaug.data import load_digits
from synthaug.generators import DDPM
from synthaug.nn import make_denoiser, noise_scheduler


def bare_steps(model: DDPM, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Seconds for ``steps`` plain training steps of the model's network (no EMA, no trainer),
    under the autocast ``fit`` uses on the device (bfloat16 on CUDA, none on the CPU)."""
    device = x.device
    net = make_denoiser(
        x.shape[1:],
        int(y.max()) + 1,
        width=model.width,
        res_blocks=model.res_blocks,
        hidden=model.hidden_dims,
    ).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=model.lr)
    scheduler = noise_scheduler(model.schedule, model.train_timesteps)
    g = torch.Generator(device=device).manual_seed(0)
    b = model.batch_size
    cuda = device.type == "cuda"

    def step() -> None:
        idx = torch.randint(0, len(x), (b,), generator=g, device=device)
        x0 = x[idx] * 2 - 1
        noise = torch.randn(x0.shape, generator=g, device=device)
        t = torch.randint(0, model.train_timesteps, (b,), generator=g, device=device)
        target = scheduler.get_velocity(x0, noise, t)
        autocast = torch.autocast("cuda", torch.bfloat16) if cuda else contextlib.nullcontext()
        with autocast:
            out = net(scheduler.add_noise(x0, noise, t), t, y[idx])
        loss = F.mse_loss(out.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    data = load_digits()
    rows: dict = {
        "device": str(device),
        "threads": args.threads,
        "load_before": os.getloadavg()[0],
    }
    model = DDPM(
        epochs=args.epochs,
        width=args.width,
        batch_size=args.batch_size,
        verbose=False,
        device=args.device,
    )
    ceiling = matmul_gflops(device, train_dtype)
    start = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - start
    steps = args.epochs * (len(data) // args.batch_size)
    net = model.modules_["net"]
    x, y = data.images.to(device), data.labels.to(device)
    t = torch.randint(0, model.train_timesteps, (args.batch_size,), device=device)

    def one_step() -> None:
        out = net(x[: args.batch_size], t, y[: args.batch_size])
        out.square().mean().backward()

    train_mf = flops_per_image(one_step, args.batch_size) / 1e6
    net.zero_grad(set_to_none=True)
    bare_s = bare_steps(model, x, y, steps)
    train = {
        "fit_img_s": args.epochs * len(data) / fit_s,
        "bare_img_s": steps * args.batch_size / bare_s,
        "mflop": train_mf,
        "ceiling_gflops": ceiling,
    }
    train["frac_bare"] = train["bare_img_s"] * train_mf / 1e3 / ceiling
    rows["train"] = train
    print(f"load average {rows['load_before']:.1f}, {args.threads} thread(s)")
    print(
        f"train  fit {train['fit_img_s']:7.0f} img/s   bare {train['bare_img_s']:7.0f} img/s   "
        f"MF {train_mf:7.1f}   ceiling {ceiling:5.1f} GF/s   frac(bare) {train['frac_bare']:.0%}"
    )
    rows["sample"] = []
    for steps_, guidance in ((10, 1.0), (25, 1.0), (50, 1.0), (100, 1.0), (25, 0.0)):
        model.set_params(sample_steps=steps_, guidance=guidance)
        mf = flops_per_image(lambda m=model: m.sample(4, seed=1), 4) / 1e6
        ceiling = matmul_gflops(device)
        start = time.perf_counter()
        model.sample(args.samples, seed=0)
        rate = args.samples / (time.perf_counter() - start)
        frac = rate * mf / 1e3 / ceiling
        row = {"steps": steps_, "guidance": guidance, "img_s": rate, "mflop": mf, "frac": frac}
        rows["sample"].append(row)
        print(
            f"sample {steps_:3d} steps, guidance {guidance:.0f}: {rate:7.1f} img/s   "
            f"MF {mf:8.1f}   ceiling {ceiling:5.1f} GF/s   frac {frac:.0%}"
        )
    rows["load_after"] = os.getloadavg()[0]
    print(f"load average after: {rows['load_after']:.1f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
