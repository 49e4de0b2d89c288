"""The orchestrator floor: one LISP node (xTR, Map-Server/Map-Resolver) composed of the engines in
:mod:`lisp_app.control`, configured from :mod:`lisp_app.config`, and the query interface the API
reads it through."""

from .xtr import Xtr

__all__ = ["Xtr"]
