"""LISP+ALT (RFC 6836): the ALT RIB and its import policy, and the adapter around os-ken's BGP speaker."""
