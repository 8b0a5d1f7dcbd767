"""monre_milter: a Postfix milter that enforces the MONRE email regulation.

Layers (dependencies point one way): glue -> engine <- pack; extract turns raw bytes into facts.
The engine never imports pymilter, prometheus_client, sockets or files.
"""

__version__ = "0.1.0"
