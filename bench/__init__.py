"""`make bench`: our sign-in sessions against stock SimpleJWT, on PostgreSQL under gunicorn."""
