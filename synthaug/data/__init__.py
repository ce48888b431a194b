"""Datasets, loaders and imbalance tools: the bottom layer, imported by every other one."""

from synthaug.data._dataset import ImageDataset, from_arrays
from synthaug.data._dicom_read import DicomDataset, load_dicom_folder
from synthaug.data._dicom_write import write_dicom
from synthaug.data._digits import load_digits
from synthaug.data._imbalance import make_imbalanced
from synthaug.data._phantoms import make_phantoms

__all__ = [
    "DicomDataset",
    "ImageDataset",
    "from_arrays",
    "load_dicom_folder",
    "load_digits",
    "make_imbalanced",
    "make_phantoms",
    "write_dicom",
]
