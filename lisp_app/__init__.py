"""lisp_app: a LISP xTR and LISP+ALT mapping daemon built as an os-ken OpenFlow application."""

__version__ = "0.1.0"
