"""schemathesis hooks for the run against the real server (SCHEMATHESIS_HOOKS):
tus PATCH bodies are `application/offset+octet-stream`, bytes like any binary body."""

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
