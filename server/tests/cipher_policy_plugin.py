"""pytest plugin (registered in the root conftest.py): apply the TLS cipher policy before any test
module imports grpc, which reads GRPC_SSL_CIPHER_SUITES only at import."""

from server import cipher_policy

cipher_policy.apply()
