"""Every signal — a push from WeChat, a login, a read — is stored once as an interaction."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Unprocessed(Index):
    """The interactions still to process, by id: the worker's queue. Partial (WHERE processed_at
    IS NULL), so that it holds only the few rows in flight: a push stored processed never enters
    it, and marking one processed takes it out rather than adding an entry for its new value."""

    def __init__(self, *, fields: tuple[str, ...] | list[str] = ("id",),
                 name: str = "idx_interaction_unprocessed") -> None:
        super().__init__(fields=fields, name=name)
        self.extra = ' WHERE "processed_at" IS NULL'


class Interaction(Model):
    id = fields.BigIntField(primary_key=True)
    source = fields.CharField(max_length=8)  # oa | wecom | mp
    kind = fields.CharField(max_length=64)  # e.g. event.subscribe, message.text
    dedup_key = fields.CharField(max_length=191)
    actor = fields.CharField(max_length=128, null=True)  # openid / external_userid of the person
    scene = fields.CharField(max_length=128, null=True)
    payload: fields.Field[dict] = fields.JSONField()
    received_at = fields.DatetimeField()
    processed_at = fields.DatetimeField(null=True)
    claimed_until = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    prospect = fields.ForeignKeyField(
        "models.Prospect", related_name="interactions", null=True, on_delete=fields.SET_NULL
    )
    code = fields.ForeignKeyField(
        "models.Code", related_name="interactions", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "interaction"
        unique_together = (("source", "dedup_key"),)
        indexes = (("prospect_id", "id"),  # a person's timeline, newest first
                   Unprocessed())
