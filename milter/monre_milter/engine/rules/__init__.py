"""Rule modules. Importing this package registers every rule with the engine."""
from . import attachment_size, freemail  # noqa: F401
from . import smime  # noqa: F401  (art. 9.2)
from . import dnsbl, rate_limit, spam_header  # noqa: F401  (art. 10.2)
from . import banned_type, classified  # noqa: F401  (art. 10.1, 11.5)
