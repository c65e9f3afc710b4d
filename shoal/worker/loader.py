"""Finding the user's App: ``module`` (its ``app`` attribute) or ``module:attribute``."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from shoal.exceptions import ShoalError


class AppLoadError(ShoalError):
    """The app module cannot be imported, or holds no App."""


def load_app(spec: str) -> Any:
    """Import ``module`` or ``module:attribute`` and return the App in it."""
    from shoal.app import App

    module_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ShoalError:
        raise  # a bad setting, say: its message already says what to fix
    except Exception as exc:
        raise AppLoadError(
            f"cannot import app module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if attr:
        app = getattr(module, attr, None)
    else:
        app = getattr(module, "app", None)
        if app is None:
            found = [v for v in vars(module).values() if isinstance(v, App)]
            app = found[0] if len(found) == 1 else None
    if not isinstance(app, App):
        raise AppLoadError(
            f"no shoal App found in {spec!r}: name it 'app' or pass -A module:attribute"
        )
    return app
