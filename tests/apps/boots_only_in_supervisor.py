"""An app that imports in the supervisor but fails in its worker processes (a missing
dependency on the workers' side, say): the supervisor must stop, not restart forever."""

from __future__ import annotations

import multiprocessing
import os

import shoal

if multiprocessing.parent_process() is not None:
    raise ImportError("no module named 'only_on_the_supervisor' (in the worker)")

app = shoal.App(os.environ.get("NUMBERS_APP_ID", "boots-only-in-supervisor"))
