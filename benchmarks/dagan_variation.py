"""Does DAGAN make variants of its sources, not copies and not noise? A check on digits.

Trains ``DAGAN`` on a pool of ``load_digits()`` (the development pool by default, the part
no reported result uses) with classes 5-9 cut to 2 images each, samples ``--n`` images of
each rare class with their source exemplars, and prints per class:

- ``to source``: the mean L2 distance of a sample to its source exemplar, next to
  ``real pair``, the mean distance between two different real digits of the class (all
  1,797 digits), the scale of within-class variation;
- ``min``: the smallest distance of a sample to its source (0 would be a copy; the
  ``mean`` row gives the smallest over the classes);
- ``spread``: the mean distance between two samples of the same source (0 would mean the
  generator ignores its noise);
- ``logreg acc``: the accuracy of a logistic regression trained on all 1,797 digits at
  labelling the samples as their conditioned class (on the real sources for comparison).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/dagan_variation.py
    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/dagan_variation.py --timing

``--timing`` only times a fit with the defaults on the 1,527 evaluation-pool digits and
sampling 10,000 images (the benchmark fits DAGAN many times).

Everything runs on the CPU with one torch thread and is deterministic for ``--seed``.
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.linear_model import LogisticRegression

from synthaug.data import load_digits, make_imbalanced, select_pool
from synthaug.generators import DAGAN

RARE = (5, 6, 7, 8, 9)


def mean_pair_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between two different rows of ``images``."""
    flat = images.flatten(1).double()
    d = torch.cdist(flat, flat)
    n = len(flat)
    return float(d.sum() / (n * (n - 1)))


def same_source_spread(images: torch.Tensor, sources: torch.Tensor) -> float:
    """Mean distance between two samples made from the same source, over the sources."""
    keys = torch.unique(sources.flatten(1), dim=0, return_inverse=True)[1]
    spreads = [
        mean_pair_distance(images[keys == k]) for k in keys.unique() if (keys == k).sum() > 1
    ]
    return sum(spreads) / len(spreads)


def timing() -> None:
    """Fit time with the defaults on the 1,527 evaluation-pool digits (no quality measured
    there), and the sampling rate."""
    data = select_pool(load_digits(), "evaluation")
    started = time.perf_counter()
    model = DAGAN(device="cpu", verbose=False).fit(data)
    fit = time.perf_counter() - started
    started = time.perf_counter()
    model.sample(10_000, seed=0)
    rate = 10_000 / (time.perf_counter() - started)
    print(
        f"timing: DAGAN() on {len(data)} digits, {model.epochs} epochs: fit in {fit:.1f} s; "
        f"sampling {rate:,.0f} img/s"
    )


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    if args.timing:
        timing()
        return
    digits = load_digits()
    train = make_imbalanced(
        select_pool(digits, args.pool), counts={c: 2 for c in RARE}, seed=args.seed
    )
    judge = LogisticRegression(max_iter=5000).fit(
        digits.images.flatten(1).numpy(), digits.labels.numpy()
    )
    params = {k: v for k, v in vars(args).items() if k in ("epochs", "noise_dim", "lr")}
    params = {k: v for k, v in params.items() if v is not None}
    model = DAGAN(seed=args.seed, device="cpu", verbose=False, **params)
    started = time.perf_counter()
    model.fit(train)
    print(
        f"DAGAN({', '.join(f'{k}={v}' for k, v in model.get_params().items() if k in params)})"
        f" on {len(train)} {args.pool}-pool digits (classes 5-9: 2 each): fit in "
        f"{time.perf_counter() - started:.1f} s, last epoch {model.history[-1]}"
    )
    print(
        f"{'class':>5} {'to source':>10} {'min':>6} {'real pair':>10} {'spread':>8} "
        f"{'logreg acc':>11}"
    )
    rows = []
    for c in RARE:
        images, labels, sources = model.sample_with_sources(args.n, y=c, seed=args.seed)
        distances = (images - sources).flatten(1).norm(dim=1)
        to_source, closest = float(distances.mean()), float(distances.min())
        real_pair = mean_pair_distance(digits.images[digits.labels == c])
        spread = same_source_spread(images, sources)
        acc = float((judge.predict(images.flatten(1).numpy()) == labels.numpy()).mean())
        acc_src = float((judge.predict(sources.flatten(1).numpy()) == labels.numpy()).mean())
        rows.append((to_source, closest, real_pair, spread, acc))
        print(
            f"{c:>5} {to_source:10.3f} {closest:6.3f} {real_pair:10.3f} {spread:8.3f} {acc:11.3f}"
            f"  (sources: {acc_src:.3f})"
        )
    mean = [sum(r[i] for r in rows) / len(rows) for i in range(5)]
    print(
        f"{'mean':>5} {mean[0]:10.3f} {min(r[1] for r in rows):6.3f} {mean[2]:10.3f} "
        f"{mean[3]:8.3f} {mean[4]:11.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pool", default="development", choices=("development", "evaluation", "all")
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=200, help="samples per rare class")
    parser.add_argument("--epochs", type=int, default=None, help="default: DAGAN's")
    parser.add_argument("--noise-dim", dest="noise_dim", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--timing", action="store_true", help="only time fit and sampling")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
