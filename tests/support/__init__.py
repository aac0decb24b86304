"""What the test suites share: paths and fixtures of the sandbox tests (`sandbox`), real worker processes
(`workers`), Redis and the session's queue (tests/conftest.py, which loads these as plugins)."""
