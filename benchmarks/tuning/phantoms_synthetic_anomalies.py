"""Compare DRAEM settings on phantoms that no reported cell uses (issue 20's tuning).

    PYTHONPATH=. python benchmarks/tuning/phantoms_synthetic_anomalies.py "steps=600, batch_size=16" /tmp/maps.png

The argument is DRAEMDetector keyword arguments. Training: the 255 normal slices of
make_graded_phantoms(255, 60, size=32, seed=77); test: make_graded_phantoms(100, 60,
size=32, seed=177) (the reported grid draws seed 0 only). Prints the image AUROC (normal
against all lesions, then per grade) for the map's maximum after 1x1, 3x3 and 5x5 smoothing,
PCA (20 components) on the same data, and the pixel AUROC on 50 + 50 medium-grade slices of
make_phantoms(seed=277, return_masks=True); writes 8 normal and 8 medium slices with their
maps to the PNG. Results: benchmarks/results/tuning/phantoms_synthetic_anomalies.txt.
"""
import sys, time, torch, numpy as np
torch.set_num_threads(1)
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from synthaug.data import make_graded_phantoms, make_phantoms
from synthaug.anomaly import DRAEMDetector, PCADetector
kw = eval("dict(%s)" % sys.argv[1])
ds = make_graded_phantoms(255, 60, size=32, kind="chest", seed=77)   # tuning data: a seed no reported cell uses
test = make_graded_phantoms(100, 60, size=32, kind="chest", seed=177)
normal = ds.subset((ds.labels == 0).nonzero().flatten())
lab = test.labels.numpy(); y = lab != 0
t = time.time(); det = DRAEMDetector(device="cpu", validation_fraction=0.0, **kw).fit(normal)
fit = time.time() - t
m = det._maps(test.images)
for k in (1, 3, 5):
    s = (F.avg_pool2d(m, k, 1, k//2, count_include_pad=False) if k > 1 else m).flatten(1).amax(1).numpy()
    per = [round(roc_auc_score(y[(lab==0)|(lab==g)], s[(lab==0)|(lab==g)]),3) for g in (1,2,3)]
    print("smooth", k, round(roc_auc_score(y, s), 4), per)
p = PCADetector(n_components=20, validation_fraction=0.0).fit(normal).decision_function(test)
print("pca", round(roc_auc_score(y, p), 4), [round(roc_auc_score(y[(lab==0)|(lab==g)], p[(lab==0)|(lab==g)]),3) for g in (1,2,3)])
px, masks = make_phantoms((50, 50), size=32, seed=277, return_masks=True, lesion_radius=(0.04, 0.06), lesion_contrast=(0.2, 0.3))
mm = det._maps(px.images)
print("pixel auroc (medium-like)", round(roc_auc_score(masks.flatten().numpy(), mm.flatten().numpy()), 4))
print(f"fit {fit:.1f}s", det.history_[-1])
from matplotlib.figure import Figure
fig = Figure(figsize=(16, 4))
idx = list(range(8)) + list(np.nonzero(lab == 2)[0][:8])
for j, i in enumerate(idx):
    ax = fig.add_subplot(2, 16, j + 1); ax.imshow(test.images[i, 0], cmap="gray", vmin=0, vmax=1); ax.axis("off")
    ax = fig.add_subplot(2, 16, 16 + j + 1); ax.imshow(m[i, 0], cmap="magma", vmin=0, vmax=1); ax.axis("off"); ax.set_title(f"{float(m[i].max()):.2f}", fontsize=7)
fig.savefig(sys.argv[2] if len(sys.argv) > 2 else "/tmp/maps.png", dpi=80)
