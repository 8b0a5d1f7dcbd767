"""Raw bytes -> facts. Importing this package registers the analysers (each appends to message.ANALYSERS)."""
from . import message  # noqa: F401
from ..smime import analyser as _smime_analyser  # noqa: F401  (art. 9.2)
from . import content as _content  # noqa: F401  (art. 10.1, 10.2: text and files of every part)
