"""The loopback server: ASGI app, uvicorn runner, mounts, upstream proxy."""
