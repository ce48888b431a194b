"""Finding the files of a data folder, with one rule for links, loops and hidden entries.

Every folder reader (image folders, DICOM folders, the command line's ``--data`` folder) finds
its files here, so they all follow the same rule:

- names starting with ``.`` (``.DS_Store``, ``.ipynb_checkpoints``) are skipped;
- a link to a file is read as that file;
- a link to a folder is followed when it leads out of the data folder (data assembled from
  links into a shared store); one that leads back into the data folder, to the data folder
  itself or to a folder above it is refused, since it would read the same images again, as
  another class or without end;
- a link that leads nowhere (broken, or a loop of links) is refused;
- a file or folder reached twice (two links to one target) is refused: the same image would
  count twice, possibly in two classes.

Each refusal is a :class:`~synthaug.errors.DataFileError` naming the link and where it leads.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthaug.errors import DataFileError

# Suffixes (compared in lower case) of the image files an image folder holds: those
# torchvision's ImageFolder took, in its order, and GIF.
IMAGE_SUFFIXES = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
)


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has the suffix of an image file (:data:`IMAGE_SUFFIXES`)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def shown_path(path: str | Path) -> str:
    """``path`` made absolute for a message, without following links (which can loop), and
    said to be a link that leads nowhere when it is one."""
    text = os.path.abspath(path)
    if os.path.islink(path) and not os.path.exists(path):
        return f"{text} (a link that leads nowhere: broken, or a loop of links)"
    return text


class FolderScan:
    """One walk over a data folder ``root``: the class folders and the files under them.

    The walk remembers every folder and file it reached (by real path), so that one reached
    twice, through two links, is refused wherever it happens.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "a").mkdir()
    >>> _ = (root / "a" / "x.png").write_bytes(b"")
    >>> (root / "b").symlink_to(root)
    >>> scan = FolderScan(root)
    >>> [p.name for p in scan.class_folders()]  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    synthaug.errors.DataFileError: .../b is a link to ..., the data folder itself: ...
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._root_real = Path(os.path.realpath(self.root))
        self._dirs: dict[Path, Path] = {self._root_real: self.root}
        self._files: dict[Path, Path] = {}

    def class_folders(self) -> list[Path]:
        """The subfolders of ``root`` (links to folders included, by the rule), sorted by
        name, hidden ones left out."""
        folders = []
        for entry in _listing(self.root):
            path = self.root / entry.name
            if os.path.islink(path):
                real = self._follow(path)
                if real.is_dir():
                    self._enter(path, real)
                    folders.append(path)
            elif path.is_dir():
                self._enter(path, self._root_real / entry.name)
                folders.append(path)
        return folders

    def files(self, folder: Path) -> list[Path]:
        """Every file under ``folder`` (a class folder, or ``root``), in ``os.walk`` order
        (a folder's files by name, then its subfolders by path), hidden entries left out."""
        real = self._dirs_by_path().get(folder)
        if real is None:  # root itself, or a folder class_folders did not list
            real = Path(os.path.realpath(folder))
        found: list[tuple[str, list[Path]]] = []
        self._walk(folder, real, found)
        return [file for _, files in sorted(found, key=lambda item: item[0]) for file in files]

    # -- the rule ---------------------------------------------------------------------------
    def _dirs_by_path(self) -> dict[Path, Path]:
        return {path: real for real, path in self._dirs.items()}

    def _walk(self, folder: Path, real: Path, found: list[tuple[str, list[Path]]]) -> None:
        files, subfolders = [], []
        for entry in _listing(folder):
            path = folder / entry.name
            if entry.is_symlink():
                target = self._follow(path)
                if target.is_dir():
                    self._enter(path, target)
                    subfolders.append((path, target))
                elif target.is_file():
                    self._add_file(path, target)
                    files.append(path)
            elif entry.is_dir():
                target = real / entry.name
                self._enter(path, target)
                subfolders.append((path, target))
            elif entry.is_file():
                self._add_file(path, real / entry.name)
                files.append(path)
        found.append((str(folder), files))
        for path, target in subfolders:
            self._walk(path, target, found)

    def _follow(self, link: Path) -> Path:
        """Where ``link`` leads (all links resolved); refused when nowhere or back inside."""
        try:
            target = Path(os.path.realpath(link, strict=True))
        except OSError as exc:
            raise DataFileError(
                f"{link} is a link that leads nowhere ({exc.strerror}: broken, or a loop of "
                f"links); fix it or remove it"
            ) from None
        if target.is_dir():
            inside = self._root_real in target.parents
            where = (
                "the data folder itself"
                if target == self._root_real
                else "a folder inside the data folder"
                if inside
                else "a folder that holds the data folder"
                if target in self._root_real.parents
                else None
            )
            if where is not None:
                raise DataFileError(
                    f"{link} is a link to {target}, {where}: following it would read the same "
                    f"images again (as another class, or without end); remove the link, or "
                    f"replace it with the files it should add"
                )
        return target

    def _enter(self, path: Path, real: Path) -> None:
        _reach_once(self._dirs, path, real, "one folder", "its images would count twice")

    def _add_file(self, path: Path, real: Path) -> None:
        _reach_once(
            self._files,
            path,
            real,
            "one file",
            "it would count twice (in two classes, or twice in one)",
        )


def _reach_once(seen: dict[Path, Path], path: Path, real: Path, what: str, harm: str) -> None:
    """Record ``path`` as the way to ``real`` in ``seen``; a second way there (through a link)
    is refused, saying ``what`` the two are and the ``harm`` of reading it twice."""
    first = seen.get(real)
    if first is not None and first != path:
        raise DataFileError(
            f"{first} and {path} are {what} ({real}), reached twice through a link: {harm}; "
            f"remove the link"
        )
    seen[real] = path


def _listing(folder: Path) -> list[os.DirEntry]:
    """The entries of ``folder`` sorted by name, hidden ones (``.name``) left out."""
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        raise DataFileError(f"cannot list folder {folder}: {exc.strerror}") from exc
