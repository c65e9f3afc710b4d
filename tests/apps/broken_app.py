"""An app module that cannot be imported at all."""

from __future__ import annotations

import no_such_dependency_anywhere  # noqa: F401

import shoal

app = shoal.App("broken")
