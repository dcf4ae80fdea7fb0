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
    # open | accepted | won | lost | pool | merged
    status = fields.CharField(max_length=16, default="open")
    reason = fields.CharField(max_length=256, null=True)
    # who gets it and why: first_touch, last_touch, partner, team, key_account, pool
    attribution = fields.CharField(max_length=16, null=True)
    # every touch of the person when it qualified: an attribution dispute is settled from this
    touches: fields.Field[list] = fields.JSONField(default=list)
    breakdown: fields.Field[dict] = fields.JSONField(default=dict)  # the score when it qualified
    qualified_by = fields.BigIntField(null=True)  # the interaction that made it qualify
    qualified_at = fields.DatetimeField(null=True)  # when that interaction arrived
    reached_at = fields.DatetimeField(null=True)  # when WeChat accepted the push to the owner
    accepted_at = fields.DatetimeField(null=True)
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
    salesperson = fields.ForeignKeyField(
        "models.Salesperson", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
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
    claimed_until = fields.DatetimeField(null=True)  # a sender holds it until then
    history: fields.Field[list] = fields.JSONField(default=list)  # one entry per attempt
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbound_message"
        unique_together = (("purpose", "channel"),)
