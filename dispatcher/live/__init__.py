"""Live updates: Events are published to Redis after their commit (publish.py) and streamed to
the owner's open pages as server-sent events by a separate asyncio process (server.py), so
long-lived streams never hold one of the web server's threads."""
