"""`runctl build`: source archive, upload, Cloud Build request, log following (see pipeline.py)."""
