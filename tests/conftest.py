"""Shared test set-up: the fake registry fixtures (``fake_registry``, ``make_fake_registry``)."""

# Loaded here rather than through an entry point, so that coverage starts before the package
# is imported. Users of the fake registry add the same line to their own conftest.py.
pytest_plugins = ["waylay_jobs.testing.pytest_plugin"]
