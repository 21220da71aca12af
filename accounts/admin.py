"""Sessions in the Django admin."""
