"""Unit tests of the project's plugins/ (a package, so its modules import the loader)."""
