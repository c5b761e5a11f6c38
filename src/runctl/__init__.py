"""runctl: from a git commit to a verified Cloud Run deployment, from one TOML file."""

__version__ = "0.1.0"
