"""Sending delegated jobs out: the dispatch service, budget reservation, RQ tasks, reconciler."""
