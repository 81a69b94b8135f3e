"""Errors that services raise for the caller's surface to present."""


class ServiceError(Exception):
    """A rule was broken; the message is safe to show to the person who asked."""


class NotFound(ServiceError):
    """The thing does not exist in this organisation."""


class Conflict(ServiceError):
    """The change collides with existing data (e.g. a duplicate name)."""
