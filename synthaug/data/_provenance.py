"""Where each sample came from: a real item, generated, or derived from real training items.

Every sample source reports it the same way (``sample(..., return_provenance=True)``): one
:class:`Provenance` per sample, saying whether the sample is synthetic (a network made it
from noise and a label: no training item's pixels are in it) or derived (made from real
training items: their pixels copied, changed, blended or pasted, or a network's variant of a
stored training image), how, and, where the source knows them, which training items (rows of
the dataset it was fitted on) it used and in what role. Writers turn this into what each
format can say: a manifest's ``origin`` column, an ``.npz`` array, DICOM's Conversion Type,
Source Image Sequence and Derivation Code Sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from synthaug.errors import InvalidParameterError

REAL, SYNTHETIC, DERIVED = "real", "synthetic", "derived"
# real: an item of the input, unchanged; synthetic: generated; derived: made from real items.
ORIGINS = (REAL, SYNTHETIC, DERIVED)
# What a training item gave a derived sample.
ROLES = {
    "image": "the sample is this image, changed (copied, jittered, or with lesions pasted in)",
    "lesion": "a lesion cut from this image was pasted into the sample",
    "blend": "this image was mixed into the sample pixel by pixel",
}
# Image operations a derived sample went through that DICOM can name (PS3.16 CID 7203 Image
# Derivation); other changes (noise, a network's variant) are said in words only.
OPERATIONS = {
    "pixel-addition": "pixel by pixel addition (a lesion added to a background)",
    "spatial-resampling": "spatial resampling (rotated, scaled or shifted by interpolation)",
}


class SourceItem(NamedTuple):
    """A training item a derived sample was made from.

    Attributes
    ----------
    index : int
        The item's row in the dataset the source was fitted on (for ``synthaug augment
        --source``, the input data: its ``metadata[index]`` names the file).
    role : str
        What it gave the sample: ``"image"``, ``"lesion"`` or ``"blend"`` (see :data:`ROLES`).
    """

    index: int
    role: str


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one sample came from.

    Parameters
    ----------
    origin : "real", "synthetic" or "derived"
        ``"synthetic"``: a network made it from noise and a label, without any training
        item's pixels as input. ``"derived"``: made from real training items (their pixels, or
        a network's variant of a stored one): treat it as the patient images it came from.
        ``"real"``: an item of the input itself (only in augmented data sets).
    how : str
        One line on how it was made (for manifests and DICOM Derivation Description).
    items : tuple of SourceItem
        The training items used, where the source knows them (empty for synthetic samples,
        and for derived ones whose source does not know, e.g. a saved model's exemplars).
    operations : tuple of str
        Image operations a derived sample went through, from :data:`OPERATIONS`.

    Examples
    --------
    >>> p = Provenance("derived", "a copy of a training image", (SourceItem(3, "image"),))
    >>> p.is_derived, p.items[0].index
    (True, 3)
    """

    origin: str
    how: str
    items: tuple[SourceItem, ...] = ()
    operations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise InvalidParameterError(
                f"origin must be one of {list(ORIGINS)}, got {self.origin!r}"
            )
        if not self.items and not self.operations:
            return
        if self.origin == SYNTHETIC:
            raise InvalidParameterError(
                "a synthetic sample is made from no training item; give items and operations "
                "to derived samples only"
            )
        bad = [item for item in self.items if item.role not in ROLES]
        if bad:
            raise InvalidParameterError(f"role must be one of {list(ROLES)}, got {bad[0].role!r}")
        unknown = [o for o in self.operations if o not in OPERATIONS]
        if unknown:
            raise InvalidParameterError(
                f"operations must be among {list(OPERATIONS)}, got {unknown[0]!r}"
            )

    @property
    def is_real(self) -> bool:
        """Whether the item is a real item of the input, unchanged."""
        return self.origin == REAL

    @property
    def is_synthetic(self) -> bool:
        """Whether the sample was generated from noise and a label (no patient pixels in it)."""
        return self.origin == SYNTHETIC

    @property
    def is_derived(self) -> bool:
        """Whether the sample holds (or is a variant of) real training pixels."""
        return self.origin == DERIVED


def real_provenance(index: int) -> Provenance:
    """The provenance of item ``index`` of the input, kept as it is."""
    return Provenance(REAL, "a real item of the input", (SourceItem(index, "image"),))


def sample_origin(source: Any) -> str:
    """``"derived"`` or ``"synthetic"``: what a source's samples are, from what it declares.

    Derived when it keeps real pixels (``keeps_real_pixels``: copies, jittered copies, blends,
    pasted lesions) or samples variants of stored training images
    (``exemplar_conditioned``); a source that declares neither is taken to keep real pixels,
    so that nothing is called synthetic that was not declared so.
    """
    if getattr(source, "keeps_real_pixels", True) or getattr(source, "exemplar_conditioned", False):
        return DERIVED
    return SYNTHETIC


def uniform_provenance(source: Any, n: int) -> list[Provenance]:
    """``n`` copies of what a source says about all its samples, for a source that does not
    report per sample (its items are unknown)."""
    origin = sample_origin(source)
    name = type(source).__name__
    how = (
        f"generated by {name}"
        if origin == SYNTHETIC
        else f"made by {name} from real training images (which ones: not reported)"
    )
    return [Provenance(origin, how)] * n


def made_from(
    provenance: Sequence[Provenance] | None, metadata: Sequence[Mapping[str, Any]] | None
) -> list[str] | None:
    """Per record, the training items it was made from as ``role=reference`` words (a manifest
    column): the item's file where ``metadata`` names one (``file`` of DICOM folders, ``path``
    of image folders), else ``#index``. ``None`` when there is no provenance; items are left
    out without ``metadata`` (they index data that is not at hand).
    """
    if provenance is None:
        return None
    if metadata is None:
        return [""] * len(provenance)
    words = []
    for p in provenance:
        if p.origin == REAL:  # a real item is its own file, listed as the manifest's source
            words.append("")
            continue
        refs = []
        for item in p.items:
            meta = metadata[item.index] or {}
            ref = str(meta.get("file") or meta.get("path") or f"#{item.index}")
            frame = meta.get("frame")
            if meta.get("NumberOfFrames") and frame is not None:
                ref += f"[frame {int(frame) + 1}]"
            refs.append(f"{item.role}={ref}")
        words.append(" ".join(dict.fromkeys(refs)))  # an item listed twice is named once
    return words
