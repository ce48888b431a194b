"""Datasets, loaders and imbalance tools: the bottom layer, imported by every other one.

:class:`ImageDataset` is the one in-memory type every layer passes around; loaders for
scikit-learn's digits, MedMNIST-style ``.npz`` files, image folders and DICOM folders, and
phantom generators, are registered by name in :data:`DATASETS`.
"""

from synthaug.data._dataset import ImageDataset, from_arrays
from synthaug.data._dicom_read import DicomDataset, load_dicom_folder
from synthaug.data._dicom_write import read_dicom_seg, write_dicom
from synthaug.data._digits import load_digits
from synthaug.data._files import load_image_folder, load_npz, save_image_folder, save_npz
from synthaug.data._imbalance import make_imbalanced
from synthaug.data._output import MANIFEST_NAME, atomic_output, check_output
from synthaug.data._phantoms import LESION_GRADES, make_graded_phantoms, make_phantoms
from synthaug.data._pool import POOLS, pool_indices, select_pool, split_pools
from synthaug.data._provenance import (
    Provenance,
    SourceItem,
    made_from,
    real_provenance,
    sample_origin,
    uniform_provenance,
)
from synthaug.data._registry import DATASETS

__all__ = [
    "MANIFEST_NAME",
    "atomic_output",
    "check_output",
    "POOLS",
    "Provenance",
    "SourceItem",
    "made_from",
    "real_provenance",
    "sample_origin",
    "uniform_provenance",
    "pool_indices",
    "select_pool",
    "split_pools",
    "DATASETS",
    "LESION_GRADES",
    "DicomDataset",
    "ImageDataset",
    "from_arrays",
    "load_digits",
    "load_dicom_folder",
    "load_image_folder",
    "load_npz",
    "make_graded_phantoms",
    "make_imbalanced",
    "make_phantoms",
    "read_dicom_seg",
    "save_image_folder",
    "save_npz",
    "write_dicom",
]
