"""A handler's side of a unique key (`domain.claims`): a pipeline's name, an execution's
tag. The first claim of a key creates its index aggregate; the unit of work saves it with
the holder, in the batch's one transaction."""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from domain.name_index import NameIndex
from domain.tag_index import TagIndex
from services.service_layer.handling import Context

Index = TypeVar("Index", NameIndex, TagIndex)


def claim_key(ctx: Context, index_type: type[Index], key: str, holder: UUID) -> None:
    """Point `key` at `holder`; a key another aggregate holds is refused (DomainError)."""
    index = ctx.uow.get(index_type, index_type.create_id(key))
    if index is None:
        ctx.uow.add(index_type(key, holder, at=ctx.now))
    else:
        index.claim(holder, at=ctx.now)


def release_key(ctx: Context, index_type: type[Index], key: str, holder: UUID) -> None:
    """Free `key` if `holder` holds it (a free key stays free)."""
    index = ctx.uow.get(index_type, index_type.create_id(key))
    if index is not None:
        index.release(holder, at=ctx.now)
