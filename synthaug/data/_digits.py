"""scikit-learn's digits: real 8x8 handwritten digits that ship inside scikit-learn."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits as _sk_load_digits

from synthaug.data._dataset import ImageDataset


def load_digits() -> ImageDataset:
    """Load the 1,797 8x8 handwritten digits bundled with scikit-learn.

    Nothing is downloaded: the data ships inside scikit-learn. Pixel values (0-16) are scaled
    to [0, 1]; images are ``(1797, 1, 8, 8)`` and classes are ``"0"`` ... ``"9"``.

    Examples
    --------
    >>> ds = load_digits()
    >>> len(ds), ds.sample_shape
    (1797, (1, 8, 8))
    """
    bunch = _sk_load_digits()
    images = torch.from_numpy(bunch.images.astype("float32") / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype("int64"))
    return ImageDataset(images, labels, [str(c) for c in bunch.target_names])
