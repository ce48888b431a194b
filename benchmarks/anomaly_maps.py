"""The DRAEM anomaly-map pictures of docs/anomaly.md: where the map lights up, and where the
detector fails.

    python benchmarks/anomaly_maps.py --config benchmarks/phantoms_anomaly.toml --method draem --out docs/img/anomaly_maps_phantoms.png
    python benchmarks/anomaly_maps.py --config benchmarks/few_normals_anomaly.toml --method draem --normal 8 --show 1,3,5,9 --out docs/img/anomaly_maps_few_normals.png

The detector is built from the config's own ``[methods]`` entry (same settings as the grid)
and fitted on the normal class of seed 0's training split of the evaluation pool, exactly as
that grid cell was; the picture shows test images in rows: the normal images the detector
scores highest (its false alarms), then per anomalous class the images it scores lowest
(its misses) and highest. Each image sits above its map (magma, fixed [0, 1] scale) with the
true lesion masks outlined in cyan where the data set has them; captions give class and
score.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sklearn.base import clone

from synthaug.anomaly import save_map_overlays
from synthaug.bench import load_config
from synthaug.bench._anomaly import _dataset_masks, build_detector
from synthaug.bench._task import load_dataset
from synthaug.data import pool_indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--method", default="draem")
    parser.add_argument("--normal", default=None, help="normal class (default: the config's first)")
    parser.add_argument("--per-row", type=int, default=4, help="images per group")
    parser.add_argument(
        "--show", default=None, help="anomalous classes to show, comma-separated (default: all)"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    cell = next(
        c
        for c in cfg.cells()
        if c.method == args.method
        and c.seed == 0
        and (args.normal is None or str(c.settings["normal_class"]) == args.normal)
    )
    data = load_dataset(cell.dataset)
    train, test = data.split(cell.split["test_size"], seed=0)
    normal = data.classes.index(str(cell.settings["normal_class"]))
    detector = build_detector(cell.method, cell.method_params, seed=0, device="cpu")
    t0 = time.perf_counter()
    idx = (train.labels == normal).nonzero().flatten()
    if cell.settings.get("n_normal"):
        rng = np.random.default_rng([0, normal])
        idx = torch.from_numpy(
            np.sort(rng.choice(idx.numpy(), cell.settings["n_normal"], replace=False))
        )
    fitted = clone(detector).fit(train.subset(idx))
    print(f"fitted {cell.method} on {len(idx)} normal images in {time.perf_counter() - t0:.0f}s")
    scores = fitted.decision_function(test)
    maps = fitted.anomaly_map(test.images)
    spec = cell.dataset
    masks = _dataset_masks(spec["name"], json.dumps(spec.get("params", {}), sort_keys=True))
    if masks is not None:
        full = load_dataset({**spec, "pool": "all"})
        _, test_idx = data.split_indices(cell.split["test_size"], seed=0)
        masks = masks[pool_indices(full, spec["pool"])][torch.as_tensor(test_idx)]
    labels = test.labels.numpy()
    k = args.per_row
    chosen: list[int] = []
    order = np.argsort(scores)
    normals = [i for i in order if labels[i] == normal]
    chosen += normals[::-1][:k]  # the highest-scoring normals: false alarms
    shown = None if args.show is None else {test.classes.index(c) for c in args.show.split(",")}
    for c in np.unique(labels):
        if c == normal or (shown is not None and c not in shown):
            continue
        members = [i for i in order if labels[i] == c]
        chosen += members[:k] + members[::-1][:k]  # misses, then the clearest finds
    threshold = float(np.quantile(scores[labels == normal], 0.95))
    titles = [
        f"{test.classes[labels[i]][:10]} {scores[i]:.2f}{'*' if scores[i] > threshold else ''}"
        for i in chosen
    ]
    sel = torch.as_tensor(chosen)
    save_map_overlays(
        args.out,
        test.images[sel],
        maps[sel],
        masks=None if masks is None else masks[sel],
        titles=titles,
        columns=2 * k,
        overwrite=True,
    )
    print(
        f"wrote {args.out}; * = above the 95% quantile of the normal test scores ({threshold:.2f})"
    )


if __name__ == "__main__":
    main()
