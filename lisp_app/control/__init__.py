"""The mapping daemon's state machines, sans I/O: methods take events and ``now`` and return
actions (send this, install that) for the os-ken shell to carry out."""
