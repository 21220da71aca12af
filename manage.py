#!/usr/bin/env python
"""Django's command-line utility for this project."""

import os
import sys


def main() -> None:
    """Run administrative tasks."""
    # Development settings (DEBUG on unless the environment says otherwise); WSGI and
    # ASGI, as served in production, use project.settings.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.development")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
