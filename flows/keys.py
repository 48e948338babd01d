"""Key custody across the register and the stores: rotate every bag's wrapping, retire old keys.

R13 asks for a depository store "equipped with information-protection and security
technologies"; rotation is how a compromised or expiring key-encryption key (KEK) is replaced.
Stored objects may be under retention and are never rewritten: only the *wrapping* of each bag's
data key changes — in the register, and as an added key record beside the bags in the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from catalog_sync import register
from catalog_sync.models import DigitalCopy
from integrity.layout import bag_prefix
from qor import wiring
from qor.settings import QorSettings
from storage import WrappedKey, rotate_keys, write_key_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyRotationReport:
    """What a rotation did: the new current KEK, bags re-wrapped and KEKs retired."""

    new_kek_id: str
    rewrapped: tuple[str, ...]
    already_current: tuple[str, ...]
    retired: tuple[str, ...]


def rotate_all(settings: QorSettings, *, actor: str, retire_old: bool) -> KeyRotationReport:
    """Create a new KEK, re-wrap every registered bag's data key under it, optionally retire
    the old KEKs.

    Every wrapping is computed before anything is written (a failure leaves all as it was); the
    register is updated in one transaction and a key record is added to each bag's store(s);
    old key files are deleted only after both succeeded.
    """
    keyring = wiring.keyring(settings)
    old_ids = [k for k in keyring.kek_ids()]
    new_id = keyring.create_key()
    with wiring.register_session(settings) as session:
        copies = list(session.scalars(select(DigitalCopy).order_by(DigitalCopy.id)))
        current = {c.bag_id: WrappedKey(kek_id=c.kek_id, wrapped=c.wrapped_key) for c in copies}
        result = rotate_keys(keyring, current, to_kek_id=new_id)
        replica = wiring.replica_store(settings)
        for copy in copies:
            wrapped = result.rewrapped.get(copy.bag_id)
            if wrapped is None:
                continue
            write_key_record(wiring.store_for_uri(settings, copy.store_uri), copy.bag_id, wrapped)
            if replica is not None and replica.exists(f"{bag_prefix(copy.bag_id)}bagit.txt"):
                write_key_record(replica, copy.bag_id, wrapped)
            register.update_wrapped_key(session, bag_id=copy.bag_id, wrapped=wrapped.wrapped,
                                        kek_id=wrapped.kek_id, actor=actor)
            register.record_copy_event(
                session, copy=copy, event_type="key rewrap", outcome="success",
                detail=f"data key re-wrapped under {wrapped.kek_id}; payload untouched",
                agent=actor,
            )
    retired: list[str] = []
    if retire_old:
        for kek_id in old_ids:
            if kek_id != new_id:
                keyring.retire_key(kek_id)
                retired.append(kek_id)
    logger.info("rotated %d bag key(s) to %s; retired %s", len(result.rewrapped), new_id,
                retired or "none")
    return KeyRotationReport(
        new_kek_id=new_id, rewrapped=tuple(sorted(result.rewrapped)),
        already_current=tuple(sorted(result.unchanged)), retired=tuple(retired),
    )
