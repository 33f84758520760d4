"""Scheduled work: ask the services what is due and hand it to delivery."""
