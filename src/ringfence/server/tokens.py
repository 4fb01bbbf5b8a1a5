"""Bearer tokens: created with a role and scopes, stored only as hashes, revocable.

A token is `rf_` followed by 43 random URL-safe characters (256 bits). It is
hashed with SHA-256 before it touches the database: with that much entropy a
slow password hash adds nothing, and a lookup by hash stays one index probe.
The secret is returned once, at creation, and never logged.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence

from ringfence.core.access import Action, require
from ringfence.core.model import Role, Token
from ringfence.core.names import check_pattern
from ringfence.errors import Conflict, InvalidInput, NotFound, Problem, Unauthorized
from ringfence.server.configs import Clock
from ringfence.store.sql import SqlStore

PREFIX = "rf_"
CACHE_SECONDS = 2.0
BOOTSTRAP_NAME = "bootstrap-admin"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput(
            f"unknown role {role!r}; choose one of {choices}", [Problem("/role", "unknown role", "request")]
        ) from None


class TokenService:
    def __init__(self, store: SqlStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        # Verified tokens, by hash, with when they were checked: most requests then skip a
        # database round trip. Revoking drops the entry here at once; another replica notices
        # within CACHE_SECONDS.
        self._cache: dict[str, tuple[Token, float]] = {}

    def cached(self, secret: str | None) -> Token | None:
        """The active token for `secret` if it was verified less than CACHE_SECONDS ago."""
        if not secret:
            return None
        found = self._cache.get(hash_secret(secret))
        if found is None or time.monotonic() - found[1] > CACHE_SECONDS:
            return None
        return found[0]

    def authenticate(self, secret: str | None) -> Token:
        if not secret:
            raise Unauthorized("this endpoint needs a bearer token: send Authorization: Bearer <token>")
        secret_hash = hash_secret(secret)
        with self.store.read() as reader:
            token = reader.token_by_hash(secret_hash)
        if token is not None and token.active:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[secret_hash] = (token, time.monotonic())
        if token is None:
            raise Unauthorized("the bearer token is not valid; check it, or ask an admin for a new one")
        if not token.active:
            raise Unauthorized(f"token {token.id} was revoked; ask an admin for a new one")
        return token

    def create(
        self, actor: Token, role: str, scopes: Sequence[str], name: str | None = None,
    ) -> tuple[str, Token]:
        require(actor, Action.MANAGE_TOKENS)
        if not scopes:
            raise InvalidInput("a token needs at least one scope, e.g. 'payments/*' or '*'",
                               [Problem("/scopes", "must not be empty", "request")])
        for scope in scopes:
            check_pattern(scope)
        return self._create(parse_role(role), tuple(scopes), name, actor.name)

    def _create(
        self, role: Role, scopes: tuple[str, ...], name: str | None, created_by: str,
        secret: str | None = None,
    ) -> tuple[str, Token]:
        secret = secret or new_secret()
        now = self.clock()
        token_id = "tok_" + secrets.token_hex(6)
        token = Token(
            id=token_id, name=(name or f"{role.value}-{token_id[4:]}").strip(), role=role,
            scopes=scopes, created_at=now, created_by=created_by,
        )
        with self.store.write() as tx:
            seq = tx.seq
            tx.insert_token(token, hash_secret(secret))
            tx.append_event(
                seq=seq, time=now, actor=created_by, action="token.create", subject=f"token:{token.id}",
                details={"name": token.name, "role": role.value, "scopes": list(scopes)},
            )
        return secret, token

    def list(self, actor: Token) -> list[Token]:
        require(actor, Action.MANAGE_TOKENS)
        with self.store.read() as reader:
            return reader.tokens()

    def revoke(self, actor: Token, token_id: str) -> Token:
        require(actor, Action.MANAGE_TOKENS)
        now = self.clock()
        with self.store.write() as tx:
            token = tx.token(token_id)
            if token is None:
                raise NotFound(f"there is no token {token_id!r}; `ringfence token list` shows them")
            if token.active and token.role is Role.ADMIN and not any(
                t.active and t.role is Role.ADMIN and t.id != token_id for t in tx.tokens()
            ):
                raise Conflict(f"{token_id} is the last active admin token; revoking it would lock every "
                               "admin out: create another admin token first")
            self._cache = {h: entry for h, entry in self._cache.items() if entry[0].id != token_id}
            if token.active:
                seq = tx.seq
                tx.revoke_token(token_id, now)
                tx.append_event(seq=seq, time=now, actor=actor.name, action="token.revoke",
                                subject=f"token:{token_id}", details={"name": token.name})
            revoked = tx.token(token_id)
        assert revoked is not None
        return revoked

    def bootstrap(self, given: str | None) -> str | None:
        """Make sure an admin can get in. Returns a new secret to show once, or None.

        With `given` (RINGFENCE_ADMIN_TOKEN) that token is stored as an admin if it is
        not known yet; otherwise an admin token is created only in an empty database.
        """
        with self.store.read() as reader:
            if given:
                if reader.token_by_hash(hash_secret(given)) is None:
                    self._create(Role.ADMIN, ("*",), BOOTSTRAP_NAME, "ringfence", secret=given)
                return None
            if reader.token_count() > 0:
                return None
        secret, _ = self._create(Role.ADMIN, ("*",), BOOTSTRAP_NAME, "ringfence")
        return secret
