"""The Celery app that sends session events: `celery -A project worker --beat`.

Its broker is Redis when REDIS_URL is set, and folders on disk otherwise (development:
`make run` needs nothing else). Its schedule: `dispatch` every DISPATCH_SECONDS, and a
heartbeat every HEARTBEAT_SECONDS (docs/deployment.md runs the two on several servers).
"""

import os

from celery import Celery

# Like manage.py: development unless the environment says otherwise (production sets
# DJANGO_SETTINGS_MODULE=project.settings, or DEBUG=0).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.development")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
