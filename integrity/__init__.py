"""integrity: BagIt bags (RFC 8493) — building in one pass, validating to the letter — and PREMIS.

Public API::

    build_bag(dest, *, payload, info, algorithms=("sha256", "sha512"), transform=None,
              metadata_files=None, workers=None) -> BagSummary
    problems(bag) -> list[BagProblem]     # what `qor bag validate PATH` prints; [] = valid
    validate(bag) -> None                 # raises BagInvalid(problems)
    is_valid(bag) -> bool

See ``docs/bag-profile.md`` for the bag layout and every problem class.
"""

from integrity.bag import BagFileRecord, BagInfo, BagSummary, PayloadFile, Transform, build_bag
from integrity.errors import (
    BagBuildError,
    BagExistsError,
    BagInvalid,
    BagUnreadableError,
    IntegrityError,
    PremisError,
)
from integrity.problems import BagProblem
from integrity.source import BagEntry, BagSource, FileSystemBagSource
from integrity.validate import is_valid, problems, validate

__all__ = [
    "BagBuildError",
    "BagEntry",
    "BagExistsError",
    "BagFileRecord",
    "BagInfo",
    "BagInvalid",
    "BagProblem",
    "BagSource",
    "BagSummary",
    "BagUnreadableError",
    "FileSystemBagSource",
    "IntegrityError",
    "PayloadFile",
    "PremisError",
    "Transform",
    "build_bag",
    "is_valid",
    "problems",
    "validate",
]
