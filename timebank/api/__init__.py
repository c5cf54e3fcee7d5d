"""The JSON API under /api/v1: shared schemas here, endpoints in each feature package."""
