"""The e-library's part of the compliance report (:mod:`catalog_sync.compliance`): R6 (the
electronic library serves users remotely) and R11 (staff reach the fund only through their
role), checked on the e-library's own tables."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog_sync.compliance import Check, Evidence, Violation
from catalog_sync.models import DigitalCopy
from elibrary.models import LibraryCopy, Rights, StaffAccount, StaffRole


def _r6(session: Session, _today: date) -> Evidence:
    by_rights = session.execute(
        select(LibraryCopy.rights, func.count(LibraryCopy.copy_id)).group_by(LibraryCopy.rights)
    ).all()
    outside = session.scalars(
        select(DigitalCopy.bag_id)
        .where(DigitalCopy.id.not_in(select(LibraryCopy.copy_id)))
        .order_by(DigitalCopy.id)
    ).all()
    unindexed = session.scalar(
        select(func.count(LibraryCopy.copy_id)).where(LibraryCopy.pages_indexed == 0,
                                                      LibraryCopy.rights != Rights.DARK)
    )
    violations = [Violation("not_in_elibrary", bag=b) for b in outside]
    return Evidence(
        {"copies_by_rights": {str(k): int(n) for k, n in by_rights},
         "served_copies_not_indexed": int(unindexed or 0)},
        tuple(violations[:50]), len(violations))


def _r11(session: Session, _today: date) -> Evidence:
    roles = [r.value for r in StaffRole]
    by_role = session.execute(
        select(StaffAccount.role, func.count(StaffAccount.id)).group_by(StaffAccount.role)
    ).all()
    stray = session.execute(
        select(StaffAccount.username, StaffAccount.role).where(StaffAccount.role.not_in(roles))
    ).all()
    violations = [Violation("staff_role", user=u, role=r, roles=", ".join(roles))
                  for u, r in stray]
    return Evidence({"staff_by_role": {str(k): int(n) for k, n in by_role}},
                    tuple(violations[:50]), len(violations))


CHECKS: Final[Mapping[str, Check]] = {"R6": _r6, "R11": _r11}
"""Pass as ``extra`` to :func:`catalog_sync.compliance.compliance_report`."""
