"""Notifications to the owner: new deliveries, teammates' questions and failures, by email
(at once or in the daily digest) and optionally to Slack; each one once.

- kinds.py: which Event kinds count, and how each reads;
- claims.py: finding what was not told yet and claiming it (why a scan: its docstring);
- send.py: the periodic RQ task on the slow queue, and the digest's share;
- prefs.py, slack.py, views.py: the owner's choice, the Slack post, the settings page.
"""
