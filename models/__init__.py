"""The core domain, stored with tortoise-orm. Schema changes go through aerich (see README)."""

from models.codes import Code, CodeArtwork, CodeChannel, CodeKind
from models.content import Read, Share
from models.interactions import Interaction
from models.opportunities import Opportunity, OutboundMessage, OutboundStatus
from models.people import Material, MaterialKind, Partner, Salesperson
from models.prospects import Identity, IdentityKind, Prospect, ProspectMerge
from models.scores import ScoreEntry

MODEL_MODULES = [
    "models.people",
    "models.prospects",
    "models.codes",
    "models.content",
    "models.interactions",
    "models.opportunities",
    "models.scores",
]

__all__ = [
    "MODEL_MODULES",
    "Code",
    "CodeArtwork",
    "CodeChannel",
    "CodeKind",
    "Identity",
    "IdentityKind",
    "Interaction",
    "Material",
    "MaterialKind",
    "Opportunity",
    "OutboundMessage",
    "OutboundStatus",
    "Partner",
    "Prospect",
    "ProspectMerge",
    "Read",
    "Salesperson",
    "ScoreEntry",
    "Share",
]
