"""Errors of the body-model layer (own module so that ``joints`` need not import ``base``)."""

__all__ = ["BodyModelError", "ModelFileError"]


class BodyModelError(ValueError):
    """Bad parameters, an unknown joint set or an unusable model file."""


class ModelFileError(BodyModelError, FileNotFoundError):
    """A body-model file is missing or unreadable; the message says which file and where to get it."""
