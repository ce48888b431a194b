"""Real data formats on disk: MedMNIST-style ``.npz`` files and folders of images per class.

Nothing here downloads anything. A missing file raises :class:`~synthaug.errors.DataFileError`
that says where to put it.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from synthaug._utils import warn
from synthaug.data._dataset import ImageDataset, from_arrays, integer_labels
from synthaug.data._output import MANIFEST_NAME, atomic_output, write_manifest
from synthaug.data._scan import IMAGE_SUFFIXES, FolderScan, is_image_file, shown_path
from synthaug.errors import (
    DataFileError,
    InvalidDataError,
    InvalidParameterError,
    ShapeMismatchError,
)


def load_npz(
    path: str | Path, split: str = "train", *, feature_range: tuple[float, float] | None = None
) -> ImageDataset:
    """Load one split of a MedMNIST-style ``.npz`` file.

    The file holds ``<split>_images`` (``(N, H, W)`` grayscale or ``(N, H, W, C)``, uint8 in
    [0, 255] or float in [0, 1]) and ``<split>_labels`` (``(N,)`` or ``(N, 1)`` integers) for
    ``split`` in ``train``, ``val``, ``test``, as in MedMNIST v2 (Yang et al., Scientific Data
    2023). An optional ``classes`` array names the classes; otherwise they are ``"0"``,
    ``"1"``, ... up to the largest label found in any split, so every split of a file shares
    the same labels.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file. It must already be on disk: synthaug never downloads data.
    split : str
        Which split to read (the prefix of the keys).
    feature_range : (float, float), optional
        The range the stored values are known to span, mapped to [0, 1] (values outside are
        clipped): see :func:`~synthaug.data.from_arrays`. Needed for values in other units
        (Hounsfield units, 12-bit counts); from domain knowledge, never from the data.

    Returns
    -------
    ImageDataset
        Images ``(N, C, H, W)`` in [0, 1].

    Raises
    ------
    DataFileError
        The file is missing, is not a readable ``.npz``, or lacks the split.
    InvalidDataError
        Multi-label targets (``(N, K)`` labels, as ChestMNIST has) or bad values.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.npz")
    >>> np.savez(path, train_images=np.zeros((4, 8, 8), np.uint8), train_labels=[[0], [1], [0], [1]])
    >>> ds = load_npz(path)
    >>> ds.sample_shape, ds.classes
    ((1, 8, 8), ['0', '1'])
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"no data file at {shown_path(path)}; synthaug downloads nothing: put the MedMNIST-style "
            f".npz file (keys train_images, train_labels, val_*, test_*) there, or pass its path"
        )
    try:
        # Our own handle: np.load leaves its file open when a zip turns out to be damaged.
        with open(path, "rb") as fh:
            npz = np.load(fh, allow_pickle=False)
            if isinstance(npz, np.lib.npyio.NpzFile):
                with npz:
                    arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataFileError(
            f"{path} is not a readable .npz file (corrupt or truncated?): {exc}"
        ) from exc
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFileError(
            f"{path} holds a single .npy array, not an .npz archive of named arrays; save it "
            f"with np.savez(path, train_images=..., train_labels=...)"
        )
    image_key, label_key = f"{split}_images", f"{split}_labels"
    if image_key not in arrays or label_key not in arrays:
        splits = sorted(k[: -len("_images")] for k in arrays if k.endswith("_images"))
        raise DataFileError(
            f"{path} has no {image_key!r} / {label_key!r} arrays; splits found: {splits or 'none'} "
            f"(keys: {sorted(arrays)})"
        )
    labels = _flat_labels(arrays[label_key], path, label_key)
    if "classes" in arrays:
        classes = [str(c) for c in np.asarray(arrays["classes"]).reshape(-1)]
    elif np.issubdtype(labels.dtype, np.integer):
        all_labels = [_flat_labels(v, path, k) for k, v in arrays.items() if k.endswith("_labels")]
        top = max((int(a.max()) for a in all_labels if a.size), default=-1)
        total = sum(a.size for a in all_labels)
        if top >= total:
            # Labels are class indices: a larger one is a code (or damage), and naming every
            # class up to it could mean billions of names.
            raise InvalidDataError(
                f"{path}: labels go up to {top} but the file labels only {total} images; "
                f"labels must be class indices 0..K-1: re-code them or add a 'classes' array"
            )
        classes = [str(i) for i in range(top + 1)]
    else:
        classes = None
    images = arrays[image_key]
    if images.ndim not in (3, 4):
        raise ShapeMismatchError(
            f"{path}: {image_key} must be (N, H, W) or (N, H, W, C) images, got shape {images.shape}"
        )
    return from_arrays(images, labels, classes, feature_range=feature_range)


def _flat_labels(labels: np.ndarray, path: Path, key: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise InvalidDataError(
            f"{path}: {key} has shape {labels.shape}; synthaug needs one class per image "
            f"((N,) or (N, 1) labels), multi-label targets are not supported"
        )
    return integer_labels(labels, f"{path}: {key}")


def save_npz(
    dataset: ImageDataset,
    path: str | Path,
    split: str = "train",
    *,
    extra: Mapping[str, np.ndarray] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``dataset`` as a MedMNIST-style ``.npz`` that :func:`load_npz` reads back exactly.

    Images are stored as float32 in [0, 1], ``(N, H, W)`` when single-channel and
    ``(N, H, W, C)`` otherwise; class names go in ``classes``. ``extra`` arrays are stored as
    ``<split>_<name>`` (for instance a ``synthetic`` mask). The file is written aside and
    renamed into place, so an interrupted write leaves no partial file; ``overwrite=False``
    refuses an existing one.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if dataset.is_image:
        images = dataset.images.permute(0, 2, 3, 1).numpy()
        if images.shape[-1] == 1:
            images = images[..., 0]
    else:
        raise InvalidParameterError(
            "save_npz writes images (N, C, H, W); this dataset holds feature vectors"
        )
    arrays = {
        f"{split}_images": images.astype(np.float32),
        f"{split}_labels": dataset.labels.numpy().astype(np.int64),
        "classes": np.asarray(dataset.classes, dtype=str),
    }
    for name, value in (extra or {}).items():
        arrays[f"{split}_{name}"] = np.asarray(value)
    with atomic_output(path, folder=False, overwrite=overwrite) as partial:
        try:
            with open(partial, "wb") as f:
                np.savez_compressed(f, **arrays)
        except OSError as exc:
            raise DataFileError(f"cannot write {path}: {exc}") from exc
    return path


def load_image_folder(
    root: str | Path,
    *,
    grayscale: bool | None = None,
    image_size: int | tuple[int, int] | None = None,
) -> ImageDataset:
    """Load a folder with one subfolder of images per class.

    Parameters
    ----------
    root : str or Path
        ``root/<class name>/<image file>``, as torchvision's ``ImageFolder`` reads it: class
        labels follow the sorted subfolder names, and a class folder's subfolders are read
        too. Names starting with ``.`` are skipped. A link to a file is read as the file; a
        link to a folder is followed when it leads out of ``root``, and refused when it
        leads back into it (or loops, or leads nowhere), as is a file reached twice.
    grayscale : bool, optional
        Force one channel (True) or RGB (False). By default images are read as grayscale when
        every file is grayscale, else as RGB.
    image_size : int or (height, width), optional
        Resize every image to this size. Without it all images must already share one size.

    Returns
    -------
    ImageDataset
        Images ``(N, 1 or 3, H, W)`` in [0, 1]; ``metadata`` holds each file's path.

    Raises
    ------
    DataFileError
        No folder, no class folders with images, an unreadable image, or a link that breaks
        the rule above (the message names it).
    InvalidDataError
        A 32-bit integer image with values outside 0..65535, or a floating-point image with
        values outside [0, 1].
    InvalidParameterError
        ``grayscale`` or ``image_size`` of the wrong type or size.

    Warns
    -----
    SynthaugWarning
        An empty class folder (read as a class without images), or images with transparent
        pixels (transparency is dropped).

    Notes
    -----
    Pixel values are scaled by the range of the file's bit depth, the same for every image:
    8-bit images (1-bit, grayscale, palette, RGB; an alpha channel is dropped) by 255, 16-bit
    ones (PNG, TIFF, PGM) by 65535, so a dim 16-bit image stays dim. A 32-bit integer image
    is read as 16-bit when its values fit (0..65535); a floating-point image must already lie
    in [0, 1].

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["cat", "dog"]:
    ...     (root / name).mkdir()
    ...     Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / name / "a.png")
    >>> ds = load_image_folder(root)
    >>> ds.classes, ds.sample_shape
    (['cat', 'dog'], (1, 8, 8))
    """
    if not isinstance(root, (str, os.PathLike)):
        raise InvalidParameterError(f"root must be a folder path, got {type(root).__name__}")
    if grayscale is not None and not isinstance(grayscale, (bool, np.bool_)):
        raise InvalidParameterError(f"grayscale must be True, False or None, got {grayscale!r}")
    size = _image_size(image_size)
    root = Path(root)
    if not root.is_dir():
        raise DataFileError(
            f"no image folder at {shown_path(root)}; synthaug downloads nothing: put one "
            f"subfolder per class there (root/<class>/<image>.png), or pass the folder's path"
        )
    scan = FolderScan(root)
    class_dirs = scan.class_folders()
    files = [
        (file, label)
        for label, folder in enumerate(class_dirs)
        for file in scan.files(folder)
        if is_image_file(file)
    ]
    if not files:
        why = "no image files in any class folder" if class_dirs else "no class folders"
        raise DataFileError(
            f"{root} has no class subfolders with images ({', '.join(IMAGE_SUFFIXES)}): {why}"
        )
    classes = [folder.name for folder in class_dirs]
    found = {label for _, label in files}
    empty = [name for i, name in enumerate(classes) if i not in found]
    if empty and not (root / MANIFEST_NAME).is_file():
        # synthaug's writers leave empty folders for classes without images on purpose (and a
        # manifest); elsewhere an empty class folder is more likely a mistake worth a word.
        warn(
            f"class folder(s) {empty} under {root} hold no images; they are read as classes "
            f"with no samples (remove them if they are not classes)"
        )
    pictures = []
    for file, _ in files:
        try:
            with Image.open(file) as img:
                img.load()
                pictures.append(img.copy())
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            raise DataFileError(
                f"cannot read image {file} (corrupt or not an image?): {exc}"
            ) from exc
    if grayscale is None:
        grayscale = all(p.mode in _GREY_MODES or p.mode.startswith("I;16") for p in pictures)
    sizes = sorted({p.size for p in pictures})
    if size is None and len(sizes) > 1:
        raise ShapeMismatchError(
            f"images in {root} have different sizes {sizes[:5]} (width, height); pass "
            f"image_size=(height, width) to resize them all"
        )
    transparent = [file for (file, _), p in zip(files, pictures, strict=True) if _transparent(p)]
    if transparent:
        warn(
            f"{len(transparent)} image(s) under {root} have transparent pixels (first: "
            f"{transparent[0]}); transparency is dropped and the colours under it are read"
        )
    arrays = [
        _unit_pixels(p, bool(grayscale), size, file)
        for (file, _), p in zip(files, pictures, strict=True)
    ]
    labels = np.asarray([label for _, label in files], dtype=np.int64)
    dataset = from_arrays(np.stack(arrays), labels, classes, channels_last=not grayscale)
    dataset.metadata = [{"path": str(file)} for file, _ in files]
    return dataset


# Modes Pillow opens one-channel files in (16-bit ones are "I;16", "I;16B", ...).
_GREY_MODES = ("1", "L", "LA", "La", "I", "F")


def _image_size(image_size: object) -> tuple[int, int] | None:
    """``image_size`` as ``(height, width)``, checked."""
    if image_size is None:
        return None
    size = (image_size, image_size) if _is_count(image_size) else image_size
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(_is_count(v) and v >= 1 for v in size)
    ):
        raise InvalidParameterError(
            f"image_size must be a positive int or (height, width), got {image_size!r}"
        )
    return int(size[0]), int(size[1])


def _is_count(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _transparent(picture: Image.Image) -> bool:
    """Whether ``picture`` has an alpha channel (or a transparent colour) that hides pixels."""
    if picture.mode in ("RGBA", "LA", "La", "PA", "RGBa"):
        return picture.getextrema()[-1][0] < 255
    if "transparency" in picture.info:
        return picture.convert("RGBA").getextrema()[-1][0] < 255
    return False


def _unit_pixels(
    picture: Image.Image, grayscale: bool, size: tuple[int, int] | None, file: Path
) -> np.ndarray:
    """One image as float32 in [0, 1], ``(H, W)`` or ``(H, W, 3)``, resized to ``size``.

    Values are scaled by the range of the file's bit depth, the same for every image: 255 for
    8-bit modes, 65535 for 16-bit ones.
    """
    mode = picture.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(picture)
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if mode == "F" and not (np.isfinite(values).all() and 0 <= low and high <= 1):
            raise InvalidDataError(
                f"{file} is a floating-point image with values in [{low:.4g}, {high:.4g}]; "
                f"float images must lie in [0, 1]: save it rescaled, or as 8- or 16-bit"
            )
        if mode == "I" and (low < 0 or high > 65535):
            raise InvalidDataError(
                f"{file} is a 32-bit integer image with values in [{low:.0f}, {high:.0f}]; "
                f"synthaug reads 8- and 16-bit images (scaled by 255 and 65535): save it as "
                f"16-bit, or scale it yourself and use from_arrays"
            )
        scale = 1.0 if mode == "F" else 65535.0
        unit = Image.fromarray((values.astype(np.float64) / scale).astype(np.float32), "F")
        if size is not None:
            unit = unit.resize((size[1], size[0]), Image.BILINEAR)
        grey = np.clip(np.asarray(unit, dtype=np.float32), 0.0, 1.0)
        return grey if grayscale else np.repeat(grey[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in picture.info:
        picture = picture.convert("RGBA")  # Pillow warns when a palette's transparency is cut
    try:
        picture = picture.convert("L" if grayscale else "RGB")
    except ValueError as exc:
        raise DataFileError(
            f"cannot read image {file}: its mode {mode} cannot be converted: {exc}"
        ) from exc
    if size is not None:
        picture = picture.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(picture, dtype=np.float32) / np.float32(255.0)


def save_image_folder(
    dataset: ImageDataset,
    root: str | Path,
    *,
    names: Sequence[str] | None = None,
    manifest: Sequence[Mapping[str, object]] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write every image as an 8-bit PNG under ``root/<class name>/``, with ``manifest.csv``.

    :func:`load_image_folder` reads the folder back (values rounded to 8 bits). The folder is
    built aside and renamed into place: an interrupted write leaves nothing at ``root``, and an
    existing non-empty ``root`` is refused unless ``overwrite=True`` (which replaces it whole,
    once the new folder is complete), so two runs never mix.

    Parameters
    ----------
    dataset : ImageDataset
        1- or 3-channel images.
    root : str or Path
        The output folder.
    names : sequence of str, optional
        A file name (without ``.png``) per image, unique within its class (default
        ``000000``, ``000001``, ...).
    manifest : sequence of mapping, optional
        Extra columns per image for ``root/manifest.csv``, which always lists each image's
        ``file`` (relative to ``root``) and ``class``.

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    if not dataset.is_image or dataset.sample_shape[0] not in (1, 3):
        raise InvalidParameterError(
            f"PNG output needs 1- or 3-channel images, got samples of shape {dataset.sample_shape}"
        )
    bad = [c for c in dataset.classes if not re.fullmatch(r"[^/\\\0]+", c) or c in (".", "..")]
    if bad:
        raise InvalidDataError(f"class names {bad} cannot be used as folder names")
    names = [f"{i:06d}" for i in range(len(dataset))] if names is None else list(names)
    extra = [{}] * len(dataset) if manifest is None else list(manifest)
    labels = dataset.labels.numpy()
    if len(names) != len(dataset) or len(extra) != len(dataset):
        raise ShapeMismatchError(
            f"{len(names)} names and {len(extra)} manifest rows for {len(dataset)} images; give "
            f"one of each per image"
        )
    files = [f"{dataset.classes[c]}/{n}.png" for c, n in zip(labels, names, strict=True)]
    clashes = sorted(f for f, n in Counter(files).items() if n > 1)
    if clashes or any(not re.fullmatch(r"[^/\\\0]+", n) or n.startswith(".") for n in names):
        raise InvalidParameterError(
            f"file names must be unique within a class and plain (no '/', not hidden); "
            f"clashing: {clashes[:3]}"
        )
    pixels = (dataset.images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    with atomic_output(root, folder=True, overwrite=overwrite) as partial:
        try:
            for name in dataset.classes:
                (partial / name).mkdir(parents=True, exist_ok=True)
            for image, file in zip(pixels, files, strict=True):
                picture = image[..., 0] if image.shape[-1] == 1 else image
                Image.fromarray(picture).save(partial / file)
            rows = [
                {"file": file, "class": dataset.classes[c], **row}
                for file, c, row in zip(files, labels, extra, strict=True)
            ]
            write_manifest(partial, rows)
        except OSError as exc:
            raise DataFileError(f"cannot write images under {root}: {exc}") from exc
    return root
