"""The fund register (кітапхана қоры · библиотечный фонд): items with immutable inventory
numbers, acquisitions, accounting books, repairs, write-offs, stocktakes, digital copies, MARC.

Plain functions taking a SQLAlchemy :class:`~sqlalchemy.orm.Session`; none commits. Modules:
:mod:`.db` (engines, migrations), :mod:`.register` (items and copies), :mod:`.audit` (hash-chained
log), :mod:`.books` (R9 books), :mod:`.stocktake` (R14), :mod:`.marc` (MARC21).
"""

from __future__ import annotations

from catalog_sync.audit import LogAnchor, LogProblem, log_head, verify_log
from catalog_sync.db import make_engine, session_factory, upgrade
from catalog_sync.models import (
    AcquisitionSource,
    ActionKind,
    BibRecord,
    Condition,
    CopyEvent,
    DigitalCopy,
    Item,
    ItemStatus,
    MaterialType,
    ReceiptBatch,
    StocktakeReason,
    ValueFlag,
    WriteOffAct,
    WriteOffReason,
)
from catalog_sync.register import (
    add_digital_copy,
    add_item,
    add_record,
    digital_copies,
    find_item_by_code,
    get_digital_copy,
    get_item,
    next_copy_version,
    open_receipt_batch,
    process_item,
    receive_item,
    record_copy_event,
    set_status,
    update_wrapped_key,
    write_off,
)

__all__ = [
    "AcquisitionSource",
    "ActionKind",
    "BibRecord",
    "Condition",
    "CopyEvent",
    "DigitalCopy",
    "Item",
    "ItemStatus",
    "LogAnchor",
    "LogProblem",
    "MaterialType",
    "ReceiptBatch",
    "StocktakeReason",
    "ValueFlag",
    "WriteOffAct",
    "WriteOffReason",
    "add_digital_copy",
    "add_item",
    "add_record",
    "digital_copies",
    "find_item_by_code",
    "get_digital_copy",
    "get_item",
    "log_head",
    "make_engine",
    "next_copy_version",
    "open_receipt_batch",
    "process_item",
    "receive_item",
    "record_copy_event",
    "session_factory",
    "set_status",
    "update_wrapped_key",
    "upgrade",
    "verify_log",
    "write_off",
]
