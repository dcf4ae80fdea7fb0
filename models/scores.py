"""Every point of a score, explained: the rule that gave it and the interaction that earned it."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ScoreEntry(Model):
    """One ledger row. `points` are as earned: behaviour points decay from `at` when a score is
    read (domain/scoring.py). Profile rows name the interaction that gave the field."""

    id = fields.BigIntField(primary_key=True)
    prospect = fields.ForeignKeyField("models.Prospect", related_name="score_entries",
                                      on_delete=fields.CASCADE)
    rule = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=8)  # profile | behavior
    points = fields.IntField()
    interaction_id = fields.BigIntField(null=True)
    at = fields.DatetimeField()

    class Meta:
        table = "score_entry"
        indexes = (("prospect_id",),)
