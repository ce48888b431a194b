"""Fingerprints of training: the weights and samples of every generator family and the scores
of the network detectors, each trained on tiny data with fixed seeds.

Run it on two commits and diff the outputs to show that a refactor keeps "same seed, same
result" (issue 31 did so for its restructure: the outputs at 2e0fe34 and after were identical):

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/same_seed_check.py > after.txt

Each line is ``name weights-hash samples-hash`` (generators) or ``name scores-hash`` (detectors).
"""

import hashlib
import warnings

import torch

from synthaug import DP
from synthaug.anomaly import create_detector
from synthaug.data import ImageDataset, load_digits
from synthaug.generators import create_generator
from synthaug.metrics import CLASSIFIERS, FeatureExtractor

warnings.simplefilter("ignore")
torch.set_num_threads(1)


def h(t):
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:12]


digits = load_digits()
idx = torch.cat([torch.nonzero(digits.labels == c).flatten()[:12] for c in range(4)])
small = digits.subset(idx)
out = {}
specs = {
    "cvae": dict(epochs=2, latent_dim=4, hidden_dims=(16,)),
    "cvae-es": dict(epochs=3, latent_dim=4, hidden_dims=(16,), early_stopping=1),
    "cvae-dp": dict(epochs=2, latent_dim=4, hidden_dims=(16,), dp=DP(epsilon=5.0)),
    "cgan": dict(epochs=2, latent_dim=4, hidden_dims=(16,)),
    "cgan-dp": dict(epochs=2, latent_dim=4, hidden_dims=(16,), dp=DP(epsilon=5.0)),
    "dagan": dict(epochs=2, hidden_dims=(16, 8), noise_dim=4),
    "deepsmote": dict(epochs=2, latent_dim=4, hidden_dims=(16,)),
    "delta-transfer": dict(epochs=2, latent_dim=4, hidden_dims=(16,)),
    "perclass-vae": dict(epochs=2, latent_dim=4, hidden_dims=(16,)),
}
for name, p in specs.items():
    kind = name.split("-dp")[0].split("-es")[0]
    m = create_generator(kind, verbose=False, device="cpu", seed=3, **p).fit(small)
    imgs, labels = m.sample(8, seed=5)
    sd = m.modules_.state_dict() if hasattr(m, "modules_") else {}
    w = "".join(h(v) for k, v in sorted(sd.items()) if v.dtype.is_floating_point)
    out[name] = hashlib.sha256(w.encode()).hexdigest()[:12] + " " + h(imgs)
zeros = digits.subset(torch.nonzero(digits.labels == 0).flatten()[:60])
dets = {
    "draem": dict(steps=6, batch_size=8, width=4, device="cpu"),
    "cutpaste": dict(steps=6, batch_size=8, width=4, device="cpu"),
    "fanogan": dict(
        epochs=2, encoder_epochs=2, batch_size=16, hidden_dims=(16,), latent_dim=4, device="cpu"
    ),
    "vae": dict(epochs=2, latent_dim=2, hidden_dims=(16,)),
}
for name, p in dets.items():
    d = create_detector(name, seed=2, **p)
    data = zeros
    if name in ("draem", "cutpaste"):
        x = torch.nn.functional.interpolate(zeros.images, size=16)
        data = ImageDataset(x, zeros.labels, zeros.classes)
    d.fit(data)
    out[name] = h(torch.as_tensor(d.decision_function(data)))
classifiers = {
    "cnn-epochs": ("cnn", dict(epochs=2)),
    "cnn-steps": ("cnn", dict(steps=12)),
    "cnn-balanced-jitter": ("cnn", dict(steps=12, sampler="balanced", augment="jitter")),
    "cnn-mixup-la": ("cnn", dict(steps=12, mixup=0.4, loss="logit-adjusted")),
    "resnet-cw": ("resnet", dict(steps=8, loss="class-weighted")),
}
for name, (kind, p) in classifiers.items():
    clf = CLASSIFIERS.create(kind, seed=4, batch_size=16, device="cpu", **p).fit(small)
    out[name] = h(torch.as_tensor(clf.predict_proba(small.images)))
features = FeatureExtractor(epochs=2, seed=4, device="cpu").fit(small)
out["feature-extractor"] = h(torch.as_tensor(features.transform(small.images)))
for k, v in out.items():
    print(k, v)
