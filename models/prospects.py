"""A prospect is one person, however many WeChat identities they show us."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Prospect(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, null=True)
    company = fields.CharField(max_length=128, null=True)
    title = fields.CharField(max_length=64, null=True)
    department = fields.CharField(max_length=64, null=True)
    industry = fields.CharField(max_length=64, null=True)
    company_size = fields.CharField(max_length=32, null=True)
    email = fields.CharField(max_length=254, null=True)
    tags: fields.Field[list[str]] = fields.JSONField(default=list)
    owner = fields.ForeignKeyField(
        "models.Salesperson", related_name="prospects", null=True, on_delete=fields.SET_NULL
    )
    owner_assigned_at = fields.DatetimeField(null=True)
    partner = fields.ForeignKeyField(
        "models.Partner", related_name="prospects", null=True, on_delete=fields.SET_NULL
    )
    first_code = fields.ForeignKeyField(
        "models.Code", related_name="first_prospects", null=True, on_delete=fields.SET_NULL
    )
    profile_score = fields.IntField(default=0)
    behavior_score = fields.IntField(default=0)
    quadrant = fields.CharField(max_length=16, null=True)  # see domain/routing.py
    scored_at = fields.DatetimeField(null=True)
    consent_version = fields.CharField(max_length=32, null=True)
    consent_at = fields.DatetimeField(null=True)
    merged_into = fields.ForeignKeyField(
        "models.Prospect", related_name="merged", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "prospect"
        indexes = (("owner_id",), ("merged_into_id",))


class IdentityKind(StrEnum):
    OA_OPENID = "oa_openid"
    MP_OPENID = "mp_openid"
    UNIONID = "unionid"
    EXTERNAL_USERID = "external_userid"
    PHONE = "phone"


class Identity(Model):
    """One way to recognise a prospect. A phone is kept as a keyed digest (`value`, for lookups)
    and sealed with the data key (`sealed`, to show it masked); the plain number is never stored."""

    id = fields.IntField(primary_key=True)
    prospect = fields.ForeignKeyField("models.Prospect", related_name="identities")
    kind = fields.CharEnumField(IdentityKind, max_length=16)
    value = fields.CharField(max_length=128)
    sealed = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "identity"
        unique_together = (("kind", "value"),)
        indexes = (("prospect_id",),)


class ProspectMerge(Model):
    """Two records found to be one person: `merged` was folded into `survivor` (what moved,
    why, when). The merged-away prospect stays as a tombstone whose `merged_into` leads to the
    survivor, so an old id still finds the person."""

    id = fields.IntField(primary_key=True)
    survivor = fields.ForeignKeyField("models.Prospect", related_name="merges")
    merged = fields.ForeignKeyField("models.Prospect", related_name="merged_away")
    reason = fields.CharField(max_length=64)
    moved: fields.Field[dict] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "prospect_merge"
