"""``python -m lisp_app --config site.yaml``: start the controller (lisp_app/controller.py)."""

import sys

from lisp_app.controller import main  # first: it monkey-patches for eventlet before anything

sys.exit(main())
