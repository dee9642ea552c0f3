"""Schemathesis hooks for scripts/schemathesis.sh (SCHEMATHESIS_HOOKS).

A resumable upload's chunk (`PATCH /api/v1/uploads/{id}`) is raw bytes sent
as `application/offset+octet-stream` (the tus convention), a media type
schemathesis has no serializer for: generate it as arbitrary bytes.
"""

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type(
    "application/offset+octet-stream", st.binary(max_size=512)
)
