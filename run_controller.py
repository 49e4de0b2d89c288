#!/usr/bin/env python3
"""Start lisp_app from a checkout: the same as ``lisp-controller`` and ``python -m lisp_app``
(lisp_app/controller.py).

    run_controller.py --config site.yaml [os-ken options, e.g. --ofp-tcp-listen-port 6653]
"""

import sys

from lisp_app.controller import main  # first: it monkey-patches for eventlet before anything

if __name__ == "__main__":
    sys.exit(main())
