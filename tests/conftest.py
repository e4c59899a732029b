"""Shared test set-up.

The fake registry fixtures (``fake_registry``, ``make_fake_registry``) come from the
``waylay_jobs.testing.pytest_plugin`` plugin, registered by the installed package
(``pytest11`` entry point in setup.cfg).
"""
