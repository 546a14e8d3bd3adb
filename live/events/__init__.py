"""Webhooks: the durable outbox (outbox.py), its dispatcher (dispatcher.py) and the
request signature (signing.py)."""
