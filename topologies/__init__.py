"""Runnable Mininet topologies of LISP sites (also used by the integration tests)."""
