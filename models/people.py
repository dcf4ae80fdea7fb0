"""The company's side: salespeople, channel partners and the materials marketing hands out."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Salesperson(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64)
    oa_openid = fields.CharField(max_length=64, null=True, unique=True)
    wecom_userid = fields.CharField(max_length=64, null=True, unique=True)
    team = fields.CharField(max_length=64, null=True, db_index=True)
    daily_cap = fields.IntField(default=50)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "salesperson"


class Partner(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128)
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    # the salesperson who looks after the partner: their prospects' opportunities go to them
    salesperson = fields.ForeignKeyField(
        "models.Salesperson", related_name="partners", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "partner"


class MaterialKind(StrEnum):
    ARTICLE = "article"
    WHITEPAPER = "whitepaper"
    CASE = "case"
    VIDEO = "video"
    WEBINAR = "webinar"


class Material(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=200)
    kind = fields.CharEnumField(MaterialKind, max_length=16)
    url = fields.CharField(max_length=1024, null=True)
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "material"
