"""Opportunities for salespeople, and the messages that tell them."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Opportunity(Model):
    id = fields.IntField(primary_key=True)
    prospect = fields.ForeignKeyField("models.Prospect", related_name="opportunities")
    salesperson = fields.ForeignKeyField(
        "models.Salesperson", related_name="opportunities", null=True, on_delete=fields.SET_NULL
    )
    score = fields.IntField(default=0)
    status = fields.CharField(max_length=16, default="open")
    reason = fields.CharField(max_length=256, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "opportunity"


class OutboundStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


class OutboundMessage(Model):
    """A message to send through WeChat: durable, retried with backoff, sent once per purpose."""

    id = fields.IntField(primary_key=True)
    purpose = fields.CharField(max_length=64)  # e.g. opportunity:42 — unique per channel
    channel = fields.CharField(max_length=16)  # oa_template | wecom_app | wecom_welcome
    recipient = fields.CharField(max_length=128)
    payload: fields.Field[dict] = fields.JSONField()
    opportunity = fields.ForeignKeyField(
        "models.Opportunity", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    status = fields.CharEnumField(OutboundStatus, max_length=16, default=OutboundStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True, db_index=True)
    wechat_msgid = fields.CharField(max_length=64, null=True, db_index=True)
    last_error = fields.CharField(max_length=512, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbound_message"
        unique_together = (("purpose", "channel"),)
