"""Datasets, loaders and imbalance tools: the bottom layer, imported by every other one."""

from synthaug.data._dataset import ImageDataset, from_arrays
from synthaug.data._dicom_read import DicomDataset, load_dicom_folder
from synthaug.data._dicom_write import write_dicom
from synthaug.data._digits import load_digits
from synthaug.data._files import load_image_folder, load_npz, save_image_folder, save_npz
from synthaug.data._imbalance import make_imbalanced
from synthaug.data._phantoms import LESION_GRADES, make_graded_phantoms, make_phantoms

__all__ = ["ImageDataset", "from_arrays", "load_digits", "make_imbalanced"]
__all__ += ["load_image_folder", "load_npz", "save_image_folder", "save_npz"]
__all__ += ["DicomDataset", "load_dicom_folder", "make_phantoms", "write_dicom"]
__all__ += ["LESION_GRADES", "make_graded_phantoms"]
