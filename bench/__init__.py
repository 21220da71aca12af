"""`make bench`: ours against stock SimpleJWT and a bare floor; a bench-only app (the seeder)."""
