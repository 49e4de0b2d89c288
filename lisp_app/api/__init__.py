"""Inspection and control: the REST API, its Python client and the ``lispctl`` command
(the successors of OpenLISP's ``map`` and ``mapstat``)."""
