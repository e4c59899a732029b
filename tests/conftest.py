pytest_plugins = ["waylay_jobs.testing.pytest_plugin"]
