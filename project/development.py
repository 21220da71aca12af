"""Development settings, `manage.py`'s default: the settings, with DEBUG on unless set.

`manage.py runserver` on a fresh clone then needs nothing else: development defaults for
the secrets, SQLite, an issuer on http://localhost:8000. An environment that sets DEBUG
(production sets `DEBUG=0`) is obeyed. WSGI and ASGI, as served in production, read
project.settings, where DEBUG is off unless set.
"""

import os

os.environ.setdefault("DEBUG", "1")

from project.settings import *  # noqa: F403
