"""Datasets, loaders and imbalance tools: the bottom layer, imported by every other one.

:class:`ImageDataset` is the one in-memory type every layer passes around; loaders for
scikit-learn's digits, MedMNIST-style ``.npz`` files, image folders and DICOM folders, and
phantom generators, are registered by name in :data:`DATASETS`. Volumes (DICOM series,
NIfTI) are :class:`Volume` objects in a lazily read :class:`VolumeDataset`.
"""

from synthaug.data._dataset import ImageDataset, from_arrays
from synthaug.data._dicom_read import DicomDataset, load_dicom_folder
from synthaug.data._dicom_series import (
    DicomSeriesSource,
    read_dicom_series,
    read_dicom_series_lazy,
    read_series_segmentation,
    write_dicom_series,
)
from synthaug.data._dicom_write import read_dicom_seg, write_dicom
from synthaug.data._digits import load_digits
from synthaug.data._files import load_image_folder, load_npz, save_image_folder, save_npz
from synthaug.data._imbalance import make_imbalanced
from synthaug.data._nifti import NiftiSource, read_nifti, read_nifti_lazy, write_nifti
from synthaug.data._output import MANIFEST_NAME, atomic_output, check_output
from synthaug.data._phantoms import LESION_GRADES, make_graded_phantoms, make_phantoms
from synthaug.data._phantoms3d import PHANTOM_DIFFICULTIES, make_phantom_volumes
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
from synthaug.data._volume import (
    Volume,
    VolumeDataset,
    VolumeSource,
    affine_from_spacing,
    lps_to_ras,
    ras_to_lps,
    spacing_of,
    volumes_from_arrays,
)
from synthaug.data._volume_folder import load_volume_folder

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
    # volumes
    "DicomSeriesSource",
    "NiftiSource",
    "Volume",
    "VolumeDataset",
    "VolumeSource",
    "affine_from_spacing",
    "load_volume_folder",
    "make_phantom_volumes",
    "PHANTOM_DIFFICULTIES",
    "lps_to_ras",
    "ras_to_lps",
    "read_dicom_series",
    "read_dicom_series_lazy",
    "read_nifti",
    "read_nifti_lazy",
    "read_series_segmentation",
    "spacing_of",
    "volumes_from_arrays",
    "write_dicom_series",
    "write_nifti",
]
