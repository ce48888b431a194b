"""Read a folder of DICOM slices as one volume, placed in the patient as DICOM defines it.

A series is the files sharing a Series Instance UID. Its slices are ordered by their Image
Position (Patient) projected on the slice normal (the cross product of the row and column
directions of Image Orientation (Patient)), never by file name or Instance Number; the slice
spacing comes from those positions, never from Slice Thickness (which is the thickness of
the imaged slab, not the distance between slices). Any series that is not a regular stack (a
slice missing, two at one position, uneven spacing, slices of other orientations or sizes)
is refused with one error that says which, rather than read into a volume with a wrong
geometry.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from synthaug._utils import import_optional
from synthaug.data._dicom_read import (
    _BadFile,
    _candidate_files,
    _check_decoder,
    _check_window,
    _first,
)
from synthaug.data._dicom_write import (
    DERIVED_MARK,
    SEGMENTATION_FOLDER,
    SYNTHETIC_MARK,
    _check_origin,
    _check_provenance,
    _derived,
    _marked_description,
    _resolve_origin,
    _safe_name,
    _segment_description,
    label_names,
    mark_image,
    marked_segmentation,
)
from synthaug.data._output import atomic_output, write_manifest
from synthaug.data._provenance import DERIVED, SYNTHETIC, Provenance, made_from
from synthaug.data._scan import FolderScan, shown_path
from synthaug.data._volume import Volume, VolumeDataset, VolumeSource, to_unit_range
from synthaug.errors import (
    DataFileError,
    EmptyDatasetError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)

logger = logging.getLogger("synthaug.data")

# Directions are unit vectors written with a handful of decimals: two slices whose
# orientations differ by less than this are one orientation.
_ORIENTATION_TOLERANCE = 1e-4
# Slice positions are written with limited precision (and scanners jitter them by a few
# micrometres): steps within 1% of the series' step (or 1 micrometre) are equal.
_STEP_TOLERANCE = 0.01
# The headers the geometry needs: read without the pixel data.
_HEADER_TAGS = [
    "SeriesInstanceUID",
    "SeriesDescription",
    "StudyInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "Modality",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "NumberOfFrames",
    "SliceThickness",
    "SamplesPerPixel",
]


@dataclass(frozen=True)
class _Slice:
    """What the header of one slice says."""

    path: Path
    series: str
    description: str
    study: str
    sop_instance: str
    sop_class: str
    modality: str
    rows: int
    columns: int
    spacing: tuple[float, float]  # Pixel Spacing: (between rows, between columns)
    position: np.ndarray  # Image Position (Patient)
    orientation: np.ndarray  # Image Orientation (Patient): row direction, column direction
    thickness: float | None


@dataclass(frozen=True, eq=False)
class DicomSeriesSource:
    """One DICOM series, indexed from its headers; :meth:`read` decodes its slices.

    Made by :func:`read_dicom_series_lazy` and :func:`~synthaug.data.load_volume_folder`;
    a :class:`~synthaug.data.VolumeSource` of a :class:`~synthaug.data.VolumeDataset`.

    Attributes
    ----------
    files : tuple of Path
        The slice files in slice order (ascending along the slice normal).
    shape : (int, int, int, int)
        ``(1, D, H, W)``.
    affine : numpy.ndarray
        4x4 voxel-to-LPS affine.
    metadata : dict
        ``file`` (the series folder), ``SeriesInstanceUID``, ``StudyInstanceUID``,
        ``SOPClassUID``, ``SOPInstanceUIDs`` (in slice order), ``modality``, ``files``.
    window : "auto", "minmax" or (center, width)
        How modality values map to [0, 1] (see :func:`read_dicom_series`).
    segmentation : Path or None
        A DICOM Segmentation of the series: :meth:`read` returns its label map.
    """

    files: tuple[Path, ...]
    shape: tuple[int, int, int, int]
    affine: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    window: str | tuple[float, float] = "auto"
    segmentation: Path | None = None

    @property
    def has_mask(self) -> bool:
        """Whether a DICOM Segmentation of the series gives it a label map."""
        return self.segmentation is not None

    def read(self) -> Volume:
        """Decode every slice: Modality LUT (Rescale Slope / Intercept) per slice, then one
        window for the whole volume, so that intensities compare across slices."""
        # One float32 volume, filled slice by slice and windowed in place: reading never
        # holds much more than the volume it returns.
        out = np.empty(self.shape[1:], dtype=np.float32)
        inverted = False
        for k, path in enumerate(self.files):
            out[k], monochrome1 = _slice_values(path, self.shape[2:])
            inverted = inverted or monochrome1
        out = to_unit_range(out, _window_of(self.files, self.window))
        if inverted:
            # Bright means high signal in every volume: MONOCHROME1 displays it inverted.
            np.subtract(1.0, out, out=out)
        mask = None
        if self.segmentation is not None:
            mask = read_series_segmentation(self.segmentation, self)
        return Volume(out, self.affine, mask, self.metadata)


def read_dicom_series(
    folder: str | Path,
    *,
    series_uid: str | None = None,
    window: str | tuple[float, float] = "auto",
    on_error: str = "raise",
) -> Volume:
    """Read the DICOM series in ``folder`` (searched recursively) as one volume.

    Slices are grouped by Series Instance UID and ordered by Image Position (Patient) along
    the slice normal (from Image Orientation (Patient)); the slice spacing comes from the
    positions (Slice Thickness is ignored). Each slice's Modality LUT (Rescale Slope /
    Intercept) turns stored values into modality units (e.g. Hounsfield units), then one VOI
    window for the whole volume maps them to [0, 1]; MONOCHROME1 is inverted. The affine
    maps ``(d, h, w)`` (slice, row, column) to LPS millimetres, as DICOM places the
    pixels: ``d`` runs along the ascending slice normal, ``h`` along the column direction
    (second triplet of Image Orientation), ``w`` along the row direction (first triplet).

    Parameters
    ----------
    folder : str or Path
        The folder of the series' slice files. Hidden files, ``DICOMDIR``, synthaug's
        ``manifest.csv`` and DICOM Segmentation objects are ignored.
    series_uid : str, optional
        The Series Instance UID to read when the folder holds several series.
    window : "auto", "minmax" or (center, width)
        ``"auto"``: the first slice's Window Center / Width, else the volume's own min-max.
        ``"minmax"``: the volume's min-max. ``(center, width)``: this window in modality units
        (e.g. ``(40, 400)``, a CT soft-tissue window).
    on_error : "raise" or "skip"
        A file that is no usable slice (not DICOM, damaged, no position, multi-frame, colour,
        no decoder for its compression): raise :class:`~synthaug.errors.DataFileError`
        naming it, or leave it out with a warning (logger ``synthaug.data``) naming the file
        and the reason. Problems of the series as a whole are always raised.

    Returns
    -------
    Volume
        ``(1, D, H, W)`` in [0, 1], its affine and ``metadata`` (see
        :class:`DicomSeriesSource`); no label map.

    Raises
    ------
    EmptyDatasetError
        No DICOM slice in the folder.
    DataFileError
        A bad file (with ``on_error="raise"``), several series (named) without
        ``series_uid``, a missing slice (a gap of whole steps), two slices at one position,
        uneven slice spacing or Pixel Spacing, slices of other orientations, or of other
        sizes (Rows / Columns).

    Examples
    --------
    >>> import tempfile
    >>> from synthaug.data import Volume, affine_from_spacing, write_dicom_series
    >>> import numpy as np
    >>> out = tempfile.mkdtemp() + "/s"
    >>> vol = Volume(np.linspace(0, 1, 4 * 8 * 8).reshape(4, 8, 8), affine_from_spacing((3, 1, 1)))
    >>> [folder] = write_dicom_series(vol, out)
    >>> read_dicom_series(folder).spacing
    (3.0, 1.0, 1.0)
    """
    source, _ = read_dicom_series_lazy(
        folder, series_uid=series_uid, window=window, on_error=on_error
    )
    return source.read()


def read_dicom_series_lazy(
    folder: str | Path,
    *,
    series_uid: str | None = None,
    window: str | tuple[float, float] = "auto",
    on_error: str = "raise",
) -> tuple[DicomSeriesSource, list[tuple[str, str]]]:
    """:func:`read_dicom_series` from the headers only: the series' source (its voxels are
    read by ``source.read()``) and the ``(file, reason)`` of every file left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(f"DICOM series folder {shown_path(folder)} does not exist")
    if on_error not in ("raise", "skip"):
        raise InvalidParameterError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    window = _check_window(window)
    files = _candidate_files(FolderScan(folder), folder)
    return index_series(files, folder, window=window, on_error=on_error, series_uid=series_uid)


def index_series(
    files: Sequence[Path],
    folder: Path,
    *,
    window: str | tuple[float, float],
    on_error: str,
    series_uid: str | None = None,
) -> tuple[DicomSeriesSource, list[tuple[str, str]]]:
    """The series the DICOM ``files`` of ``folder`` form (headers only), and the files left
    out; the one rule of :func:`read_dicom_series_lazy` and the folder loader."""
    slices, skipped = [], []
    for path in files:
        try:
            slices.append(_read_header(path))
        except _BadFile as exc:
            if on_error == "raise":
                raise DataFileError(f"cannot use DICOM file {str(path)!r}: {exc}") from exc.cause
            logger.warning("skipping DICOM file %s: %s", path, exc)
            skipped.append((str(path), str(exc)))
    if not slices:
        why = f"; skipped {len(skipped)} file(s), first: {skipped[0][1]}" if skipped else ""
        raise EmptyDatasetError(f"no DICOM slices found under {str(folder)!r}{why}")
    slices = _one_series(slices, folder, series_uid)
    return _series_source(slices, folder, window), skipped


def _read_header(path: Path) -> _Slice:
    try:
        # Only the elements the geometry needs: a folder of thousands of slices is indexed fast.
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except InvalidDicomError as exc:
        raise _BadFile("not a DICOM file (no 'DICM' preamble / file meta header)", exc) from exc
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise _BadFile(f"unreadable or truncated DICOM ({type(exc).__name__}: {exc})", exc) from exc
    try:
        return _slice_of(path, ds)
    except _BadFile:
        raise
    except Exception as exc:  # a damaged element fails where it is first converted
        raise _BadFile(f"damaged DICOM header ({type(exc).__name__}: {exc})", exc) from exc


def _slice_of(path: Path, ds: Any) -> _Slice:
    missing = [
        name
        for name in ("Rows", "Columns", "ImagePositionPatient", "ImageOrientationPatient")
        if name not in ds
    ]
    if missing:
        raise _BadFile(
            f"it has no {', '.join(missing)}: not a slice with a place in the patient (a "
            f"secondary capture, a report or a localiser?)"
        )
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise _BadFile("it is a multi-frame object; series of single-frame slices are read")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise _BadFile("it is a colour image; volumes are grayscale")
    tsyntax = getattr(ds.get("file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is None:
        raise _BadFile("its file meta header has no Transfer Syntax UID")
    # Caught here, from the header, so a folder that will not decode fails before any use.
    _check_decoder(tsyntax)
    orientation = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
    position = np.array([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
    if orientation.shape != (6,) or position.shape != (3,):
        raise _BadFile("Image Orientation / Position (Patient) do not hold 6 / 3 numbers")
    row, col = orientation[:3], orientation[3:]
    if not (abs(np.linalg.norm(row) - 1) < 1e-3 and abs(np.linalg.norm(col) - 1) < 1e-3):
        raise _BadFile("Image Orientation (Patient) is not two unit vectors")
    if abs(float(row @ col)) > 1e-3:
        raise _BadFile("Image Orientation (Patient) holds two directions that are not orthogonal")
    spacing = ds.get("PixelSpacing")
    if spacing is None or len(spacing) != 2 or min(float(s) for s in spacing) <= 0:
        raise _BadFile("it has no usable Pixel Spacing (two positive numbers)")
    thickness = ds.get("SliceThickness")
    return _Slice(
        path=path,
        series=str(ds.get("SeriesInstanceUID", "")),
        description=str(ds.get("SeriesDescription", "")),
        study=str(ds.get("StudyInstanceUID", "")),
        sop_instance=str(ds.get("SOPInstanceUID", "")),
        sop_class=str(ds.get("SOPClassUID", "")),
        modality=str(ds.get("Modality", "")),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        spacing=(float(spacing[0]), float(spacing[1])),
        position=position,
        orientation=orientation,
        thickness=float(thickness) if thickness not in (None, "") else None,
    )


def _one_series(slices: list[_Slice], folder: Path, series_uid: str | None) -> list[_Slice]:
    """The slices of the one series in ``folder`` (or of ``series_uid``)."""
    counts = Counter(s.series for s in slices)
    if series_uid is not None:
        chosen = [s for s in slices if s.series == series_uid]
        if not chosen:
            raise DataFileError(
                f"{str(folder)!r} holds no series {series_uid!r}; it holds {_named(slices)}"
            )
        return chosen
    if len(counts) > 1:
        raise DataFileError(
            f"{str(folder)!r} holds {len(counts)} series: {_named(slices)}; put each series "
            f"in its own folder, or pass series_uid= the one to read"
        )
    return slices


def _named(slices: list[_Slice]) -> str:
    described = {s.series: s.description for s in slices}
    counts = Counter(s.series for s in slices)
    return ", ".join(
        f"{uid or '(no Series Instance UID)'}"
        f"{f' {described[uid]!r}' if described[uid] else ''} ({n} files)"
        for uid, n in sorted(counts.items())
    )


def _series_source(
    slices: list[_Slice], folder: Path, window: str | tuple[float, float]
) -> DicomSeriesSource:
    """Check the slices form one regular stack; its source, slices in order."""
    where = str(folder)
    sizes = Counter((s.rows, s.columns) for s in slices)
    if len(sizes) > 1:
        shown = ", ".join(f"{r}x{c} ({n} files)" for (r, c), n in sorted(sizes.items()))
        raise DataFileError(
            f"series in {where!r} mixes slice sizes (Rows x Columns): {shown}; a volume's "
            f"slices share one size: remove the others (a localiser?)"
        )
    reference = slices[0]
    turned = [
        s
        for s in slices
        if not np.allclose(s.orientation, reference.orientation, atol=_ORIENTATION_TOLERANCE)
    ]
    if turned:
        raise DataFileError(
            f"series in {where!r} mixes slice orientations: {reference.path.name} has Image "
            f"Orientation (Patient) {_shown(reference.orientation)}, {turned[0].path.name} "
            f"{_shown(turned[0].orientation)} ({len(turned)} of {len(slices)} files differ); "
            f"a volume's slices share one orientation"
        )
    pixel_spacings = Counter(s.spacing for s in slices)
    if len(pixel_spacings) > 1 and not np.allclose(
        list(pixel_spacings), reference.spacing, rtol=_STEP_TOLERANCE
    ):
        shown = ", ".join(f"{list(sp)} ({n} files)" for sp, n in pixel_spacings.items())
        raise DataFileError(
            f"series in {where!r} has inconsistent Pixel Spacing: {shown}; a volume's slices "
            f"share one spacing"
        )
    row, col = reference.orientation[:3], reference.orientation[3:]
    normal = np.cross(row, col)
    ordered = sorted(slices, key=lambda s: float(s.position @ normal))
    along = np.array([float(s.position @ normal) for s in ordered])
    steps = np.diff(along)
    for i, gap in enumerate(steps):
        if gap <= 1e-3:  # a micrometre: one position written twice
            raise DataFileError(
                f"series in {where!r} has two slices at one position ({along[i]:.4g} mm along "
                f"the slice normal): {ordered[i].path.name} and {ordered[i + 1].path.name}; "
                f"remove the duplicate"
            )
    # The smallest step is the series' own: a missing slice only makes steps longer.
    step = float(steps.min()) if len(steps) else 0.0
    tolerance = max(1e-3, _STEP_TOLERANCE * step)
    for i, gap in enumerate(steps):
        if abs(gap - step) <= tolerance:
            continue
        whole = round(gap / step)
        if whole >= 2 and abs(gap - whole * step) <= tolerance * whole:
            raise DataFileError(
                f"series in {where!r} misses {whole - 1} slice(s) between "
                f"{ordered[i].path.name} ({along[i]:.4g} mm along the slice normal) and "
                f"{ordered[i + 1].path.name} ({along[i + 1]:.4g} mm), at a step of "
                f"{step:.4g} mm; add the missing files"
            )
        raise DataFileError(
            f"series in {where!r} has inconsistent slice spacing: {gap:.4g} mm between "
            f"{ordered[i].path.name} and {ordered[i + 1].path.name}, {step:.4g} mm elsewhere; "
            f"a volume needs evenly spaced slices"
        )
    affine = np.eye(4)
    if len(ordered) > 1:
        # From the positions themselves: a tilted gantry's stack is sheared, and stays so.
        affine[:3, 0] = (ordered[-1].position - ordered[0].position) / (len(ordered) - 1)
    else:
        # One slice has no step; its thickness (or 1 mm) stands in, along the normal.
        affine[:3, 0] = normal * (reference.thickness or 1.0)
    affine[:3, 1] = col * reference.spacing[0]
    affine[:3, 2] = row * reference.spacing[1]
    affine[:3, 3] = ordered[0].position
    metadata = {
        "file": str(folder),
        "files": [str(s.path) for s in ordered],
        "SeriesInstanceUID": reference.series,
        "StudyInstanceUID": reference.study,
        "SOPClassUID": reference.sop_class,
        "SOPInstanceUIDs": [s.sop_instance for s in ordered],
        "modality": reference.modality,
    }
    return DicomSeriesSource(
        files=tuple(s.path for s in ordered),
        shape=(1, len(ordered), reference.rows, reference.columns),
        affine=affine,
        metadata=metadata,
        window=window,
    )


def _shown(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _slice_values(path: Path, size: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """The modality values (Rescale Slope / Intercept applied) of one slice, and whether it
    is MONOCHROME1 (displayed inverted)."""
    try:
        ds = pydicom.dcmread(path)
        values = apply_modality_lut(np.asarray(ds.pixel_array), ds).astype(np.float64)
    except Exception as exc:  # pydicom and its decoders raise many kinds
        raise DataFileError(
            f"cannot decode DICOM slice {str(path)!r} ({type(exc).__name__}: {exc})"
        ) from exc
    if values.shape != tuple(size):
        raise DataFileError(
            f"DICOM slice {str(path)!r} decodes to {values.shape}, its header said {tuple(size)}"
        )
    return values, str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"


def _window_of(
    files: Sequence[Path], window: str | tuple[float, float]
) -> tuple[float, float] | None:
    """The ``(center, width)`` window of a series, or None for its min-max."""
    if window == "auto":
        header = pydicom.dcmread(files[0], stop_before_pixels=True)
        if "WindowCenter" in header and "WindowWidth" in header:
            return _first(header.WindowCenter), _first(header.WindowWidth)
        return None
    return None if window == "minmax" else window


def write_dicom_series(
    volumes: Volume | Sequence[Volume] | VolumeDataset,
    out_dir: str | Path = "synthetic-dicom-series",
    *,
    labels: Sequence[int] | Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    modality: str = "OT",
    series_description: str | None = None,
    origin: str | None = None,
    derivation: str | None = None,
    source_studies: Sequence[str] = (),
    provenance: Sequence[Provenance] | None = None,
    source_metadata: Sequence[Mapping[str, Any]] | None = None,
    bits: int = 16,
    segment_label: str = "lesion",
    overwrite: bool = False,
) -> list[Path]:
    """Write each volume as one DICOM series (one file per slice), marked synthetic or
    derived, and its label map as one multi-frame DICOM Segmentation of that series.

    Slices are Secondary Capture images (highdicom's ``SCImage``, ``synthaug[dicom]``) that
    also carry the Frame of Reference and Image Plane attributes (a standard extended SOP
    class): Image Position (Patient) of each slice, Image Orientation (Patient), Pixel
    Spacing and Slice Thickness from the volume's affine, so that :func:`read_dicom_series`
    (or any DICOM viewer) puts every voxel back where it was. A series is written in slice
    order ``d = 0, 1, ...``; a reader orders slices along the slice normal (row x column
    direction), so a volume whose slice axis runs against the normal comes back flipped along
    ``d``, its affine changed to match: the same voxels at the same places. Pixels are stored
    as :func:`~synthaug.data.write_dicom` stores them (``round(x * (2**bits - 1))`` with a
    window that maps them back to [0, 1]), and each file is marked exactly as
    :func:`~synthaug.data.write_dicom` marks an image of the same ``origin`` (Conversion
    Type, patient placeholders, Patient Identity Removed, De-identification Method, Series
    Description, and for derived volumes Derivation Description, Source Image Sequence and
    Derivation Code Sequence): see its documentation.

    Files go to ``out_dir/<class>/<origin>_<class>_<index>/<origin>_<class>_<index>_<slice>.dcm``
    (one folder per series: :func:`~synthaug.data.load_volume_folder` reads them back with
    their labels), label maps to ``out_dir/segmentations/<origin>_<class>_<index>_seg.dcm``
    (one BINARY Segmentation per volume with a label set, one segment per label value
    ``1..max``, referencing every slice of its series; all in one Segmentation series), and
    ``out_dir/manifest.csv`` lists one row per series (folder, class, origin, synthetic
    yes/no, Series Instance UID, slices, mask file, the training items a derived volume was
    made from). Every call starts a new study; every volume gets new Series, Frame of
    Reference and SOP Instance UIDs. The folder is built aside and renamed into place, as
    :func:`~synthaug.data.write_dicom` does.

    Parameters
    ----------
    volumes : Volume, sequence of Volume or VolumeDataset
        ``(1, D, H, W)`` volumes in [0, 1]; a data set brings its labels and classes (leave
        ``labels`` and ``classes`` out) and is read one volume at a time.
    out_dir : str or Path
        Output folder (created; must be new or empty unless ``overwrite``).
    labels, classes
        Class of each volume, as :func:`~synthaug.data.write_dicom` takes them.
    modality, series_description, origin, derivation, source_studies, bits, overwrite
        As :func:`~synthaug.data.write_dicom`.
    provenance : sequence of Provenance, optional
        One record per volume; its items index the volumes of ``source_metadata``.
    source_metadata : sequence of mapping, optional
        The metadata of the volumes the provenance's items index (a source data set's
        :attr:`~synthaug.data.VolumeDataset.metadata`). Slice ``k`` of a derived volume
        references slice ``k`` of each DICOM source volume of the same depth in its Source
        Image Sequence; a source of another depth (or not DICOM) is named by its study only.
    segment_label : str
        Segment Label of the label map's segments (``"<label> <value>"`` when it has several).

    Returns
    -------
    list of Path
        The series folders, in volume order.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from synthaug.data import Volume, affine_from_spacing
    >>> vol = Volume(np.zeros((3, 8, 8), np.float32), affine_from_spacing((2.0, 0.5, 0.5)))
    >>> [folder] = write_dicom_series(vol, tempfile.mkdtemp() + "/out")
    >>> len(list(folder.glob("*.dcm")))
    3
    """
    hd = import_optional("highdicom", "dicom")
    sources, names = _series_inputs(volumes, labels, classes)
    if bits not in (8, 16):
        raise InvalidParameterError(f"bits must be 8 or 16, got {bits!r}")
    if not isinstance(modality, str) or not re.fullmatch(r"[A-Z]{2,16}", modality):
        raise InvalidParameterError(
            f"modality must be a DICOM modality code such as 'OT', 'CT' or 'MR', got {modality!r}"
        )
    if not isinstance(segment_label, str) or not 0 < len(segment_label) <= 60:
        raise InvalidParameterError(
            f"segment_label must be a non-empty string of at most 60 characters, got {segment_label!r}"
        )
    provenance = _check_provenance(provenance, len(sources), source_metadata)
    origin = _resolve_origin(origin, provenance)
    marking = _check_origin(origin, derivation, source_studies)
    series_description = _marked_description(series_description, marking.mark)
    out_dir = Path(out_dir)
    sources_of = made_from(provenance, source_metadata)
    study_uid, seg_series_uid = generate_uid(), generate_uid()
    with atomic_output(out_dir, folder=True, overwrite=overwrite) as partial:
        folders, rows = [], []
        for index, (source, name) in enumerate(zip(sources, names, strict=True)):
            volume = source.read()
            if volume.shape[0] != 1:
                raise ShapeMismatchError(
                    f"volume {index} has {volume.shape[0]} channels; a DICOM series holds "
                    f"one (write each channel as its own series)"
                )
            stem = f"{marking.mark.lower()}_{_safe_name(name)}_{index:06d}"
            folder = partial / _safe_name(name) / stem
            slices = _write_one_series(
                hd,
                volume,
                folder,
                stem,
                name=name,
                index=index,
                bits=bits,
                modality=modality,
                study_uid=study_uid,
                series_description=series_description,
                marking=marking,
                derived=_derived_slices(
                    hd,
                    None if provenance is None else provenance[index],
                    origin,
                    derivation,
                    source_studies,
                    source_metadata,
                    volume.shape[1],
                ),
            )
            row: dict[str, object] = {
                "file": folder.relative_to(partial).as_posix(),
                "class": name,
                "origin": DERIVED if marking.mark == DERIVED_MARK else SYNTHETIC,
                "synthetic": "yes" if marking.mark == SYNTHETIC_MARK else "no",
                "series_instance_uid": slices[0].SeriesInstanceUID,
                "slices": len(slices),
                "mask_file": "",
            }
            if sources_of is not None:
                row["made_from"] = sources_of[index]
            if volume.mask is not None and volume.mask.any():
                seg = _series_segmentation(
                    hd, slices, volume.mask, segment_label, seg_series_uid, index, marking
                )
                seg_folder = partial / SEGMENTATION_FOLDER
                seg_folder.mkdir(parents=True, exist_ok=True)
                seg_path = seg_folder / f"{stem}_seg.dcm"
                seg.save_as(seg_path, enforce_file_format=True)
                row["mask_file"] = seg_path.relative_to(partial).as_posix()
            folders.append(out_dir / folder.relative_to(partial))
            rows.append(row)
        write_manifest(partial, rows)
    return folders


def _series_inputs(
    volumes: Volume | Sequence[Volume] | VolumeDataset,
    labels: Sequence[int] | Sequence[str] | None,
    classes: Sequence[str] | None,
) -> tuple[list[VolumeSource], list[str]]:
    """The volume sources to write and the class name of each."""
    if isinstance(volumes, VolumeDataset):
        if labels is not None or classes is not None:
            raise InvalidParameterError(
                "a VolumeDataset brings its own labels and classes; leave labels/classes out"
            )
        sources = [volumes.source(i) for i in range(len(volumes))]
        return sources, [volumes.classes[int(label)] for label in volumes.labels]
    sources = [volumes] if isinstance(volumes, Volume) else list(volumes)
    bad = [type(v).__name__ for v in sources if not isinstance(v, Volume)]
    if bad or not sources:
        raise InvalidDataError(
            f"write_dicom_series writes synthaug.data.Volume objects or a VolumeDataset, got "
            f"{bad[0] if bad else 'no volumes'}"
        )
    return sources, label_names(labels, len(sources), classes, "volumes")


def _plane_geometry(affine: np.ndarray) -> tuple[np.ndarray, tuple[float, float], np.ndarray]:
    """Image Orientation (Patient), Pixel Spacing and the slice step of an affine."""
    col_axis, row_axis = affine[:3, 1], affine[:3, 2]
    row_spacing, col_spacing = np.linalg.norm(col_axis), np.linalg.norm(row_axis)
    row_dir, col_dir = row_axis / col_spacing, col_axis / row_spacing
    if abs(float(row_dir @ col_dir)) > 1e-6:
        raise InvalidDataError(
            "the volume's affine has rows and columns that are not perpendicular; a DICOM "
            "slice is a rectangular grid: resample the volume first"
        )
    return (
        np.concatenate([row_dir, col_dir]),
        (float(row_spacing), float(col_spacing)),
        affine[:3, 0],
    )


def _write_one_series(
    hd: ModuleType,
    volume: Volume,
    folder: Path,
    stem: str,
    *,
    name: str,
    index: int,
    bits: int,
    modality: str,
    study_uid: str,
    series_description: str,
    marking: Any,
    derived: list[Any] | None,
) -> list[Dataset]:
    """The slices of one volume, written to ``folder``; returned as datasets (for its SEG)."""
    orientation, pixel_spacing, step = _plane_geometry(volume.affine)
    top = 2**bits - 1
    dtype = np.uint8 if bits == 8 else np.uint16
    pixels = np.rint(volume.array[0].astype(np.float64) * top).astype(dtype)
    series_uid, frame_uid = generate_uid(), generate_uid()
    folder.mkdir(parents=True)
    slices = []
    for k, plane in enumerate(pixels):
        sc = hd.sc.SCImage(
            pixel_array=plane,
            photometric_interpretation="MONOCHROME2",
            bits_allocated=bits,
            coordinate_system="PATIENT",
            patient_orientation=("L", "P"),
            study_instance_uid=study_uid,
            series_instance_uid=series_uid,
            series_number=index + 1,
            sop_instance_uid=generate_uid(),
            instance_number=k + 1,
            manufacturer="synthaug",
            patient_id=marking.patient_id,
            patient_name=marking.patient_name,
            series_description=series_description,
            pixel_spacing=pixel_spacing,
            transfer_syntax_uid=ExplicitVRLittleEndian,
        )
        sc.Modality = modality
        mark_image(hd, sc, marking, None if derived is None else derived[k], name, bits)
        # The Frame of Reference and Image Plane modules: where the slice is in the patient.
        sc.FrameOfReferenceUID = frame_uid
        sc.PositionReferenceIndicator = ""
        position = volume.affine[:3, 3] + k * step
        sc.ImagePositionPatient = [format_number_as_ds(float(v)) for v in position]
        sc.ImageOrientationPatient = [format_number_as_ds(float(v)) for v in orientation]
        sc.SliceThickness = format_number_as_ds(float(np.linalg.norm(step)))
        sc.save_as(folder / f"{stem}_{k:04d}.dcm", enforce_file_format=True)
        slices.append(sc)
    return slices


def _derived_slices(
    hd: ModuleType,
    provenance: Provenance | None,
    origin: str,
    derivation: str | None,
    source_studies: Sequence[str],
    source_metadata: Sequence[Mapping[str, Any]] | None,
    depth: int,
) -> list[Any] | None:
    """What each slice of a derived volume says about its sources; None for synthetic."""
    if origin != DERIVED:
        return None
    if provenance is None or source_metadata is None:
        same = _derived(hd, provenance, derivation, source_studies, source_metadata)
        return [same] * depth
    return [
        _derived(
            hd,
            provenance,
            derivation,
            source_studies,
            # _derived looks items up by index: the item's slice k, or its study alone.
            {
                item.index: _slice_view(source_metadata[item.index], k, depth)
                for item in provenance.items
            },  # type: ignore[arg-type]
        )
        for k in range(depth)
    ]


def _slice_view(metadata: Mapping[str, Any], k: int, depth: int) -> dict[str, Any]:
    """Slice ``k`` of a source volume, as the 2D writer's source metadata names an image."""
    view = {"StudyInstanceUID": metadata.get("StudyInstanceUID", ""), "file": metadata.get("file")}
    uids = metadata.get("SOPInstanceUIDs") or []
    if len(uids) == depth and metadata.get("SOPClassUID"):
        view.update(SOPClassUID=metadata["SOPClassUID"], SOPInstanceUID=uids[k])
    return view


def _series_segmentation(
    hd: ModuleType,
    slices: list[Dataset],
    mask: np.ndarray,
    segment_label: str,
    series_uid: str,
    index: int,
    marking: Any,
) -> Dataset:
    """One BINARY Segmentation of a series: segment ``v`` is where the label map holds ``v``."""
    count = int(mask.max())
    segments = [
        _segment_description(hd, segment_label if count == 1 else f"{segment_label} {v}", v)
        for v in range(1, count + 1)
    ]
    pixels = mask.astype(np.uint16 if count > 255 else np.uint8)
    # Numbered apart from the image series (1, 2, ...).
    return marked_segmentation(
        hd, slices, pixels, segments, series_uid, 1000, index, marking, segment_label, "label map"
    )


def read_series_segmentation(path: str | Path, volume: Volume | DicomSeriesSource) -> np.ndarray:
    """The label map of a DICOM Segmentation of ``volume``'s series, on the volume's grid.

    Parameters
    ----------
    path : str or Path
        A Segmentation that references the slices of the series (as
        :func:`write_dicom_series` writes to ``out_dir/segmentations/``), read with highdicom.
    volume : Volume or DicomSeriesSource
        The series as :func:`read_dicom_series` read it (its ``SOPInstanceUIDs`` metadata
        gives the slice order).

    Returns
    -------
    numpy.ndarray
        ``(D, H, W)`` int64: 0 background, else the segment number.
    """
    hd = import_optional("highdicom", "dicom")
    uids = volume.metadata.get("SOPInstanceUIDs")
    if not uids:
        raise InvalidDataError(
            "the volume has no SOPInstanceUIDs in its metadata: read it with read_dicom_series"
        )
    try:
        seg = hd.seg.segread(path)
        pixels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=list(uids), combine_segments=True
        )
    except FileNotFoundError as exc:
        raise DataFileError(f"Segmentation file {str(path)!r} does not exist") from exc
    except Exception as exc:  # pydicom and highdicom raise many kinds
        raise DataFileError(
            f"cannot read {str(path)!r} as a Segmentation of this series "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    return np.asarray(pixels).astype(np.int64)
