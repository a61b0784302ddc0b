"""The tests' certificate factory is the project's one: tools/devcerts.py (on `cryptography`)."""

from tools.devcerts import CLIENT_AUTH, SERVER_AUTH, issue

__all__ = ["CLIENT_AUTH", "SERVER_AUTH", "issue"]
