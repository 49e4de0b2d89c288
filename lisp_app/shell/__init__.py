"""What the os-ken shell (lisp_app.app) needs that is not I/O: its polling and warm-up policies,
and the translation between our plain data and os-ken's OpenFlow classes."""
