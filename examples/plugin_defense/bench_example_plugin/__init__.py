"""An example third-party defense package for bench (see CONTRIBUTING.md)."""
