"""A unique key (a pipeline's name, an execution's tag) that one aggregate holds at a time.

An index aggregate's id derives from its key, so uniqueness is the event store's own:
two commands racing for one key both try to create the same aggregate, and the second
save conflicts. The caller saves the index together with the holder, in one transaction.
Claiming what one already holds, or releasing a free key, changes nothing; only the
holder may release a key, which another aggregate may then claim.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from domain.errors import DomainError


class KeyClaim:
    """The claim and release verbs of an index (a mixin: the index names its holder's
    field, its two events and its two refusals)."""

    # The index's events, taking (holder id, at).
    _claimed: Callable[[UUID, datetime], None]
    _released: Callable[[UUID, datetime], None]

    @property
    def holder(self) -> UUID | None:
        raise NotImplementedError

    def _taken(self, holder: UUID) -> DomainError:
        """The refusal of a claim on a key `holder` holds."""
        raise NotImplementedError

    def _held_by_another(self, given: UUID, holder: UUID) -> DomainError:
        """The refusal of a release by `given` of a key `holder` holds."""
        raise NotImplementedError

    def claim(self, holder: UUID, *, at: datetime) -> None:
        """Point the key at `holder`; a key another aggregate holds is refused."""
        if self.holder == holder:
            return
        if self.holder is not None:
            raise self._taken(self.holder)
        self._claimed(holder, at)

    def release(self, holder: UUID, *, at: datetime) -> None:
        """Free the key; only its holder may."""
        if self.holder is None:
            return
        if self.holder != holder:
            raise self._held_by_another(holder, self.holder)
        self._released(holder, at)
