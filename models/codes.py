"""A code is one printed or shared QR code: what it is for, and the opaque scene it carries."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class CodeKind(StrEnum):
    BOOTH = "booth"
    MATERIAL = "material"
    SALESPERSON = "salesperson"
    PARTNER = "partner"


class CodeChannel(StrEnum):
    OA = "oa"
    MP = "mp"
    WECOM = "wecom"


class Code(Model):
    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(CodeKind, max_length=16)
    channel = fields.CharEnumField(CodeChannel, max_length=8)
    scene = fields.CharField(max_length=32, unique=True)
    campaign = fields.CharField(max_length=128, null=True, db_index=True)
    salesperson = fields.ForeignKeyField(
        "models.Salesperson", related_name="codes", null=True, on_delete=fields.SET_NULL
    )
    partner = fields.ForeignKeyField(
        "models.Partner", related_name="codes", null=True, on_delete=fields.SET_NULL
    )
    material = fields.ForeignKeyField(
        "models.Material", related_name="codes", null=True, on_delete=fields.SET_NULL
    )
    team = fields.CharField(max_length=64, null=True)  # a booth team taking turns
    backup = fields.ForeignKeyField(
        "models.Salesperson", related_name="backup_codes", null=True, on_delete=fields.SET_NULL
    )
    batch = fields.CharField(max_length=32, null=True, db_index=True)
    serial = fields.IntField(null=True)
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    permanent = fields.BooleanField(default=False)
    ticket = fields.CharField(max_length=256, null=True)
    url = fields.CharField(max_length=512, null=True)
    page = fields.CharField(max_length=256, null=True)
    config_id = fields.CharField(max_length=64, null=True)
    qr_code = fields.CharField(max_length=512, null=True)
    welcome_text = fields.TextField(null=True)
    ready = fields.BooleanField(default=True)  # False while its batch is still being issued
    expires_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "code"


class CodeArtwork(Model):
    """The images of a code, kept apart from the code so that lists never load them: the QR as
    WeChat drew it (mini-program and WeCom codes) and the printable PNG, rendered once."""

    code = fields.OneToOneField("models.Code", related_name="artwork", primary_key=True,
                                on_delete=fields.CASCADE)
    source = fields.BinaryField(null=True)
    png = fields.BinaryField(null=True)

    class Meta:
        table = "code_artwork"
