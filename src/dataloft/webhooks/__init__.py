"""Signed webhooks: endpoints, the deliveries of events to them, and the delivery job."""
