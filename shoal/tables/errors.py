"""The error of a table used in a way that would lose or misplace data."""

from shoal.exceptions import ShoalError


class TableError(ShoalError):
    """A table used in a way that would lose or misplace data."""
