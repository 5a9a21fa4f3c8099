"""Goal trees, playbooks, recurrence and rollups."""
