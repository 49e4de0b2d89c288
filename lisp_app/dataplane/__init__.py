"""The OpenFlow data plane: the pipeline layout and the compiler from LISP state to flows."""
