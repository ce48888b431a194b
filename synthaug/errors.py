"""Exceptions and warnings raised by synthaug.

Every error a user can cause derives from :class:`SynthaugError`, so ``except SynthaugError``
catches all of them. Each subclass also derives from the built-in exception a Python user would
expect (``ValueError`` for bad values, ``ImportError`` for a missing extra, ...), so generic
handlers keep working.

Each class also says how the command line exits when it stops a command (``exit_code``): 2 when
what the user gave is wrong (arguments, parameters, data, files; fix it and run again), 1 when
the work itself failed (training diverged, benchmark cells failed).

Every warning derives from :class:`SynthaugWarning` (a ``UserWarning``): the call worked, but
its result is probably not what was meant. Silence one kind with the standard filters, e.g.
``warnings.filterwarnings("ignore", category=SingleClassWarning)``; synthaug never changes the
filters itself.
"""

from __future__ import annotations

__all__ = [
    "SynthaugError",
    "InvalidDataError",
    "EmptyDatasetError",
    "ShapeMismatchError",
    "InvalidParameterError",
    "UnknownClassError",
    "NotFittedError",
    "CheckpointError",
    "MissingDependencyError",
    "TrainingDivergedError",
    "DataFileError",
    "BenchmarkError",
    "SynthaugWarning",
    "SingleClassWarning",
    "ConstantSamplesWarning",
]


class SynthaugError(Exception):
    """Base class of every error synthaug raises on purpose."""

    #: The ``synthaug`` command's exit status when this error stops it (2: fix the input).
    exit_code: int = 2


class InvalidDataError(SynthaugError, ValueError):
    """Images or labels are not usable: NaNs, values out of range, wrong dtype or length."""


class EmptyDatasetError(InvalidDataError):
    """A dataset (or a class that must be present) has no samples."""


class ShapeMismatchError(InvalidDataError):
    """Array shapes do not fit together or do not match what a model was fitted on."""


class InvalidParameterError(SynthaugError, ValueError):
    """A constructor or function parameter has a value outside its allowed range."""


class UnknownClassError(SynthaugError, ValueError):
    """A class label was asked for that the model or dataset does not know."""


class NotFittedError(SynthaugError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""

    exit_code = 1


class CheckpointError(SynthaugError, OSError):
    """A saved model file is missing, truncated, tampered with or of an unsupported format."""


class MissingDependencyError(SynthaugError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class TrainingDivergedError(SynthaugError, RuntimeError):
    """Training produced a non-finite loss; the model is left unfitted rather than broken."""

    exit_code = 1


class DataFileError(SynthaugError, OSError):
    """A data file is missing, unreadable or of the wrong kind; the message names the file."""


class BenchmarkError(SynthaugError, RuntimeError):
    """Some cells of a benchmark grid failed; the finished ones are kept and a rerun retries the rest."""

    exit_code = 1


class SynthaugWarning(UserWarning):
    """Base class of every warning synthaug emits: the call worked, the result may mislead.

    Examples: a class with fewer images than a method needs, images squashed to a square
    size, a report that names a best method from too few seeds. The command line shows each
    as one line, ``synthaug: warning: <message>``.
    """


class SingleClassWarning(SynthaugWarning):
    """A generator was fitted on a data set with a single class.

    Often a labelling mistake (one folder, one label column value). Library code that models
    one class on purpose (a per-class member, a model of normal anatomy) does not emit it.
    """


class ConstantSamplesWarning(SynthaugWarning):
    """A fitted generator makes (nearly) blank images, or the same image every time.

    Checked once after ``fit`` on a few seeded samples per class, against the training images
    of the class: typically a model trained on too little data or for too few epochs. Its
    samples would add nothing, or noise, to a training set.
    """
