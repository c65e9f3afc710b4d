"""shoal's web views, with Faust's names: ``from shoal.web import View, Request, Response``.

Pages are declared with ``@app.page``, routed with ``@app.table_route`` / ``@app.topic_route``
and served by each host's one web server (docs/web.md).
"""

from __future__ import annotations

from shoal.web import exceptions
from shoal.web.views import Request, Response, View

__all__ = ["Request", "Response", "View", "exceptions"]
