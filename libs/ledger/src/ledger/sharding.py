"""Hot accounts split into sub-accounts: concurrent batches lock different rows, reads sum the shards."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from uuid import UUID, uuid5

from ledger.domain import Account


@dataclass(frozen=True, slots=True)
class ShardedAccount:
    """One logical account (e.g. a city's pool) backed by `shards` real accounts with derived ids."""

    base_id: UUID
    shards: int

    @property
    def shard_ids(self) -> list[UUID]:
        return [uuid5(self.base_id, f"shard-{index}") for index in range(self.shards)]

    def pick(self, key: UUID | str | int) -> UUID:
        """The shard for `key` (e.g. the citizen's wallet id): stable, and spread evenly over the shards."""
        digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
        # Only the chosen shard's id is derived: a payment path calls this for every transfer.
        return uuid5(self.base_id, f"shard-{int.from_bytes(digest, 'big') % self.shards}")

    def accounts(self, template: Account) -> list[Account]:
        """The shard accounts to create, each a copy of `template` with its shard id and index in metadata."""
        return [
            replace(
                template,
                id=shard_id,
                metadata={**template.metadata, "shard_of": str(self.base_id), "shard": i},
            )
            for i, shard_id in enumerate(self.shard_ids)
        ]
