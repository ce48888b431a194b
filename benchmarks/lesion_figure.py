"""The lesion-transplant picture of docs/medical.md: real lesion slices, their weak masks,
copied and generated lesions in new anatomy.

    python benchmarks/lesion_figure.py --kind chest --out docs/img/lesions_chest.png
    python benchmarks/lesion_figure.py --kind brain --out docs/img/lesions_brain.png

400 normal and 20 lesion 64x64 phantom slices (development-pool seed 10**9); the lesion masks
are localised from the image labels (LesionLocalizer: red), against the true masks (green);
then CopyPaste and LesionTransplant (CGAN, 100 epochs as in the medical demo; the lesion grid
trains 150) each make 8 lesion slices with their masks (red outlines).
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from synthaug.augment import CopyPaste, LesionTransplant  # noqa: E402
from synthaug.data import make_phantoms  # noqa: E402
from synthaug.generators import CGAN  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["chest", "brain"], default="chest")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, true = make_phantoms((400, 20), size=64, kind=args.kind, seed=10**9, return_masks=True)
    t0 = time.perf_counter()
    paste = CopyPaste(seed=0, device="cpu").fit(data)
    generator = CGAN(epochs=100, diffaugment=True, verbose=False)
    transplant = LesionTransplant(
        generator=generator, localizer=paste.localizer_, seed=0, device="cpu"
    ).fit(data)
    print(f"fitted in {time.perf_counter() - t0:.0f} s")
    lesion = torch.nonzero(data.labels == 1).flatten()[:8]
    copied, _, copied_masks = paste.sample(8, y="lesion", seed=0, return_masks=True)
    made, _, made_masks = transplant.sample(8, y="lesion", seed=0, return_masks=True)
    rows = [
        ("real lesion slices", data.images[lesion], None, None),
        (
            "weak (red) vs true (green)",
            data.images[lesion],
            paste.training_masks_[lesion],
            true[lesion],
        ),
        ("copy-paste", copied, copied_masks, None),
        ("lesion-transplant", made, made_masks, None),
    ]
    fig, axes = plt.subplots(len(rows), 8, figsize=(12, 6.4))
    for r, (title, images, masks, truth) in enumerate(rows):
        for c in range(8):
            ax = axes[r, c]
            ax.imshow(images[c, 0], cmap="gray", vmin=0, vmax=1)
            if masks is not None:
                ax.contour(masks[c, 0].float(), [0.5], colors="red", linewidths=0.6)
            if truth is not None:
                ax.contour(truth[c, 0].float(), [0.5], colors="lime", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize=8)
    fig.suptitle(
        f"{args.kind} phantoms 64x64: lesions found from image labels, moved into normal slices"
    )
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
