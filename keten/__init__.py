"""Keten's programs, on top of the services and the library: the ``keten`` command (``cli``),
the embedded platform that runs every service in one process (``platform``), the demo, the
contract documents generated from the code (``contract``) and, in a checkout only, the
benchmark (``bench``)."""
