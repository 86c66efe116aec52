"""Delivery: every committed final invoice and note, sent through the channels of billing.yaml
(e-mail, webhook) once each, every action logged in billing.delivery_actions. No Dagster here:
the delivered_documents asset and `tally deliver` call it."""
from dagster_project.delivery.dispatch import DeliveryReport, Undelivered, deliver, undelivered, worklist

__all__ = ["DeliveryReport", "Undelivered", "deliver", "undelivered", "worklist"]
