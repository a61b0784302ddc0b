"""py_pytest: a py_test that runs pytest on its srcs with the repository's pytest config.

pyproject.toml carries the pytest settings (strict markers, asyncio mode, warnings as
errors) and the root conftest.py registers shared fixtures, so both are data of every
test; the same files drive `make test` in the venv.
"""

load("@rules_python//python:py_test.bzl", "py_test")

PYTEST_DEPS = [
    "//:conftest",
    "@pip//pytest",
    "@pip//pytest_asyncio",
]

def py_pytest(name, srcs, deps = [], data = [], args = [], **kwargs):
    """Runs `python -m pytest` on srcs.

    Args:
        name: target name.
        srcs: test modules (and their conftest.py); every one is collected.
        deps: libraries the tests import.
        data: files the tests read at run time.
        args: extra pytest arguments.
        **kwargs: passed to py_test (size, tags, timeout, ...).
    """
    py_test(
        name = name,
        srcs = srcs,
        main_module = "pytest",
        args = [
            "-c",
            "$(rootpath //:pyproject.toml)",
            "-p",
            "no:cacheprovider",
        ] + ["$(rootpath {})".format(src) for src in srcs if src.split(":")[-1].split("/")[-1].startswith("test_")] + args,
        data = data + ["//:pyproject.toml"],
        deps = deps + PYTEST_DEPS,
        **kwargs
    )
