"""What the transfer generators make of two images: sample grids, label fidelity, copying.

Data as one cell of the digits grid (benchmarks/digits_imbalanced.toml, seed 0, ratio 0.02):
the evaluation pool's digits, a stratified 60/40 split, classes 5-9 of the training part cut
to 2 images each. Each family is fitted with the grid's settings on that cut training part and
makes 100 samples of each rare class. Reported per family, over the rare classes:

- ``label fidelity``: the share of samples that a logistic regression trained on the whole
  (uncut) training part labels as their class (``synthaug.metrics.label_fidelity``);
- ``to nearest source``: the median pixel L2 distance of a sample to the nearest of its
  class's 2 training images; ``real to sources`` is the same for the held-out real digits of
  the class (what fresh data looks like from the 2 sources); 0 would be a copy;
- for dagan, ``to own source``: the distance to the exemplar it was made from;
- ``spread``: the median distance between two samples of one class;
- ``dcr ratio``, ``memorisation`` and ``mia auc`` of ``synthaug.metrics.privacy`` with the
  10 rare training images as members and the held-out rare digits as non-members.

Writes ``transfer_quality.json`` and a sample grid (``--figure``): per family, each rare
class's 2 sources (left, framed) next to 8 of its samples.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/transfer_quality.py \\
        --out benchmarks/results/transfer_quality.json --figure docs/img/transfer_digits.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from synthaug.data import ImageDataset, load_digits, make_imbalanced  # noqa: E402
from synthaug.data._pool import select_pool  # noqa: E402
from synthaug.generators import CVAE, DAGAN, DeepSMOTE, DeltaTransfer  # noqa: E402
from synthaug.metrics import label_fidelity, privacy  # noqa: E402

RARE = [5, 6, 7, 8, 9]
FAMILIES = {
    "cvae (shipped)": lambda: CVAE(epochs=150),
    "delta-transfer": lambda: DeltaTransfer(epochs=200),
    "deepsmote": lambda: DeepSMOTE(epochs=200),
    "dagan": lambda: DAGAN(),
}
PER_CLASS = 100


def median_nn(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.cdist(a.flatten(1), b.flatten(1)).min(1).values.median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = select_pool(load_digits(), "evaluation")
    full, test = data.split(0.4, seed=args.seed)
    train = make_imbalanced(full, ratio=0.02, minority_classes=RARE, seed=args.seed)
    labels = torch.tensor(RARE).repeat_interleave(PER_CLASS)
    rows, grids = {}, {}
    for name, make in FAMILIES.items():
        started = time.perf_counter()
        model = make().set_params(seed=args.seed, device="cpu", verbose=False).fit(train)
        fit_s = time.perf_counter() - started
        if isinstance(model, DAGAN):
            images, _, sources = model.sample_with_sources(len(labels), y=labels, seed=0)
        else:
            images, _ = model.sample(len(labels), y=labels, seed=0)
            sources = None
        row = {"fit_seconds": round(fit_s, 1)}
        row["label_fidelity"] = label_fidelity(full, (images, labels))["label_fidelity"]
        to_source, real_to_source, spread = [], [], []
        for c in RARE:
            own = images[labels == c]
            src = train.images[train.labels == c]
            to_source.append(median_nn(own, src))
            real_to_source.append(median_nn(test.images[test.labels == c], src))
            d = torch.pdist(own.flatten(1))
            spread.append(float(d.median()))
        row["to_nearest_source"] = sum(to_source) / len(RARE)
        row["real_to_sources"] = sum(real_to_source) / len(RARE)
        row["spread"] = sum(spread) / len(RARE)
        if sources is not None:
            row["to_own_source"] = float((images - sources).flatten(1).norm(dim=1).median())
        rare_train = train.subset(torch.nonzero(train.labels >= RARE[0]).flatten())
        rare_test = test.subset(torch.nonzero(test.labels >= RARE[0]).flatten())
        p = privacy(rare_train, ImageDataset(images, labels, data.classes), rare_test)
        for key in ["dcr_median_ratio", "memorization_rate", "memorization_baseline", "mia_auc"]:
            row[key] = p[key]
        rows[name] = row
        grids[name] = images
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    if args.figure:
        draw(train, grids, labels, args.figure)


def draw(train: ImageDataset, grids: dict, labels: torch.Tensor, path: Path) -> None:
    n_show = 8
    fig, axes = plt.subplots(
        len(RARE) * len(grids),
        2 + n_show,
        figsize=(1.0 * (2 + n_show), 0.95 * len(RARE) * len(grids)),
    )
    for f, (name, images) in enumerate(grids.items()):
        for r, c in enumerate(RARE):
            row = axes[f * len(RARE) + r]
            src = train.images[train.labels == c]
            own = images[labels == c][:n_show]
            for j, ax in enumerate(row):
                img = src[j] if j < 2 else own[j - 2]
                ax.imshow(img[0], cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(j < 2)
                    spine.set_color("tab:red")
                    spine.set_linewidth(2)
            row[0].set_ylabel(
                f"{name}\n{c}" if r == 0 else str(c),
                rotation=0,
                ha="right",
                va="center",
                fontsize=8,
            )
    fig.suptitle("2 real sources per class (framed) and 8 samples of each family", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)


if __name__ == "__main__":
    main()
