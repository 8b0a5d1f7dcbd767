"""Raw bytes -> facts. Importing this package registers the analysers (each appends to message.ANALYSERS)."""
from . import message  # noqa: F401
