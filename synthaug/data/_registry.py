"""Find data sets by name, for benchmark configs (``[dataset] name = "digits"``)."""

from __future__ import annotations

from synthaug.data._dicom_read import load_dicom_folder
from synthaug.data._digits import load_digits
from synthaug.data._files import load_image_folder, load_npz
from synthaug.data._phantoms import make_graded_phantoms, make_phantoms
from synthaug.registry import Registry

DATASETS: Registry = Registry("dataset")
"""Data set loaders by name: ``DATASETS.create("phantoms", n_per_class=50, size=32)``. Each
returns an ``ImageDataset``; nothing is downloaded."""

DATASETS.register("digits", load_digits)
DATASETS.register("phantoms", make_phantoms)
DATASETS.register("phantoms-graded", make_graded_phantoms)
DATASETS.register("dicom", load_dicom_folder)
DATASETS.register("npz", load_npz)
DATASETS.register("image-folder", load_image_folder)
