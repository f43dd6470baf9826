"""``keten bench``: the benchmark (``benchmark``) and its fast loader (``loader``).

Part of a checkout, not of the wheel or the image: it needs this machine's RabbitMQ and
PostgreSQL and writes its results into the repository (``bench/``).
"""
