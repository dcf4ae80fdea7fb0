"""Content as prospects meet it: shares of a material (a salesperson's card, or a reader passing
it on) and reads of it."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Share(Model):
    """One sharer's link to a material. A salesperson's share is what their card sends; each
    reader gets a share of their own for passing it on, whose `parent` is the share they came
    through, so a chain (salesperson → 张伟 → 张伟's colleague) is recorded. `key` makes each
    sharer's share of a material one row."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=64, unique=True)
    material = fields.ForeignKeyField("models.Material", related_name="shares",
                                      on_delete=fields.CASCADE)
    salesperson = fields.ForeignKeyField("models.Salesperson", related_name="shares", null=True,
                                         on_delete=fields.SET_NULL)
    prospect = fields.ForeignKeyField("models.Prospect", related_name="shares", null=True,
                                      on_delete=fields.SET_NULL)
    # the share this one's reader came through (an id, not a foreign key: aerich cannot add a
    # table that refers to itself)
    parent_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "share"


class Read(Model):
    """A prospect reading a material: seconds measured by the server from the heartbeats it saw,
    the furthest progress reported, the share it came through. Closed by the reader or, when it
    goes quiet, by timeout; a closed read is also an interaction (`mp.read`)."""

    id = fields.BigIntField(primary_key=True)
    prospect = fields.ForeignKeyField("models.Prospect", related_name="reads")
    material = fields.ForeignKeyField("models.Material", related_name="reads",
                                      on_delete=fields.CASCADE)
    share = fields.ForeignKeyField("models.Share", related_name="reads", null=True,
                                   on_delete=fields.SET_NULL)
    opened_at = fields.DatetimeField()
    seen_at = fields.DatetimeField(db_index=True)
    seconds = fields.FloatField(default=0)
    progress = fields.FloatField(default=0)
    closed_at = fields.DatetimeField(null=True, db_index=True)

    class Meta:
        table = "read"
        indexes = (("prospect_id",),)
