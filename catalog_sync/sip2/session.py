"""One self-check machine's SIP2 conversation: what each message does in the register.

:class:`Sip2Session` takes a raw frame and returns the raw reply. Every operation goes through
the same domain functions as the desk (:mod:`catalog_sync.circulation`,
:mod:`catalog_sync.readers`), each in its own transaction that commits before the reply is sent;
a refusal rolls back and the machine shows the librarian's message (AF). Fields Qor does not hold
(fees, recalls, media types) are left out as the spec allows.

Readers' passwords (field AD): checked whenever a machine sends one, and required on every
patron operation by an account with ``patron_pin = required``
(:mod:`catalog_sync.sip2.accounts`). The check itself is the e-library's (argon2id, throttled per
reader and machine), injected as :class:`PatronPasswordCheck` so this package needs no web code;
the answer goes back as CQ (valid patron password) and a wrong one refuses the operation and
withholds the reader's loans, holds and contact details.

The security-gate flag (R10): a check-out answers ``desensitize = Y`` (the domain disarmed the
tag in the same transaction) and a check-in ``resensitize = Y`` (armed again).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from catalog_sync import circulation, readers
from catalog_sync.calendar_kz import KazakhCalendar, load_calendar
from catalog_sync.circulation import CirculationPolicy
from catalog_sync.debts import Mailer
from catalog_sync.errors import ItemNotFound, LoanNotFound, LoanRefused, ReaderNotFound
from catalog_sync.models import (
    BibRecord,
    Hold,
    HoldStatus,
    Item,
    ItemStatus,
    Loan,
    Reader,
    ReaderStatus,
    Settlement,
)
from catalog_sync.sip2.accounts import Sip2Account, authenticate
from catalog_sync.sip2.codec import (
    Request,
    Response,
    day_stamp,
    decode,
    encode,
    parse_stamp,
    stamp,
    yn,
)
from catalog_sync.sip2.errors import Sip2FrameError
from qor.errors import QorError

logger = logging.getLogger(__name__)

T = TypeVar("T")

LANGUAGE: Final = "000"  # unknown / default (the spec's language codes have no Kazakh)
# Supported messages (BX), in the spec's order: patron status, check-out, check-in, block
# patron, SC/ACS status, resend, login, patron information, end patron session, fee paid, item
# information, item status update, patron enable, hold, renew, renew all.
SUPPORTED: Final = "YYYYYYYYYYYNNNYY"
MAX_LOGIN_FAILURES: Final = 3
CALENDAR_TTL_S: Final = 60.0

# R8 status → SIP2 circulation status (message 18).
_CIRCULATION_STATUS: Final[Mapping[str, str]] = {
    ItemStatus.RECEIVED: "06",  # in process
    ItemStatus.PROCESSED: "06",
    ItemStatus.AVAILABLE: "03",
    ItemStatus.ON_LOAN: "04",
    ItemStatus.IN_REPAIR: "01",  # other
    ItemStatus.MISSING: "13",
    ItemStatus.WRITTEN_OFF: "01",
}


class PatronPasswordCheck(Protocol):
    """Checks a reader's password (PIN): ``True`` right, ``False`` wrong or throttled, ``None``
    when the reader has no password to check (no e-library account). ``source`` is the machine's
    address (throttling is per reader and source). The caller commits (a failure is counted)."""

    def __call__(self, session: Session, *, ticket: str, password: str,
                 source: str) -> bool | None: ...


@dataclass(frozen=True)
class Sip2Config:
    """What every connection shares: accounts, institution id, policy, wire encoding."""

    accounts: Mapping[str, Sip2Account]
    institution: str
    library_name: str
    encoding: str = "utf-8"
    policy: CirculationPolicy = field(default_factory=CirculationPolicy)
    timeout_s: int = 0
    mailer: Mailer | None = None
    """Where "your hold is ready" notices go (``QOR_SMTP_URL``); none: nobody is mailed."""
    mail_sender: str = "library@localhost"
    patron_passwords: PatronPasswordCheck | None = None
    """How a reader's password (AD) is checked; none: a given password cannot be checked, so it
    is refused (CQ N), and an account that requires one refuses every patron operation."""


class CalendarCache:
    """The working-day calendar, re-read from the register at most once a minute (the desk's
    calendar amendments are rare; re-reading per message would cost a round trip each)."""

    def __init__(self) -> None:
        self._value: KazakhCalendar | None = None
        self._at = 0.0

    def get(self, session: Session) -> KazakhCalendar:
        """The calendar, fresh to within a minute."""
        now = time.monotonic()
        if self._value is None or now - self._at > CALENDAR_TTL_S:
            self._value, self._at = load_calendar(session), now
        return self._value


class Sip2Session:
    """One connection's state: the logged-in account, the last reply (for a 97 resend)."""

    def __init__(
        self,
        config: Sip2Config,
        sessions: sessionmaker[Session],
        *,
        peer: str = "?",
        calendar: CalendarCache | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._config = config
        self._sessions = sessions
        self._calendar = calendar or CalendarCache()
        self._clock = clock
        self.peer = peer
        self.account: Sip2Account | None = None
        self.failures = 0
        self.closed = False
        self._last: bytes | None = None
        # (ticket, SHA-256 of the password) checked right on this connection: a machine sends
        # the PIN with every message of a reader's session, and argon2 costs ~50 ms each time.
        self._verified: set[tuple[str, bytes]] = set()

    def finished(self) -> bool:
        """Whether the connection is to be closed (too many failed logins, no login)."""
        return self.closed

    # --- framing -------------------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        """The reply to one frame, or ``None`` when the connection must be closed."""
        try:
            request = decode(frame, encoding=self._config.encoding)
        except Sip2FrameError as e:
            # A damaged message is never acted on: the machine is asked to send it again.
            logger.warning("sip2 %s: %s; asking for a resend (96)", self.peer, e)
            return encode(Response("96"), encoding="ascii", with_checksum=True)
        if request.command == "97":
            if self._last is None:
                return encode(Response("96"), encoding="ascii", with_checksum=True)
            return self._last
        if request.command == "93":
            response = self._login(request)
        elif self.account is None and request.command != "99":
            logger.warning(
                "sip2 %s: message %s before a successful login; closing", self.peer,
                request.command,
            )
            self.closed = True
            return None
        else:
            response = self._dispatch(request)
        if response is None:
            return None
        wire = encode(
            response,
            encoding=self._config.encoding,
            sequence=request.sequence,
            with_checksum=request.checksummed,
        )
        self._last = wire
        return wire

    def _dispatch(self, request: Request) -> Response:
        handlers: Mapping[str, Callable[[Request], Response]] = {
            "99": self._status,
            "63": self._patron_information,
            "23": self._patron_status,
            "11": self._check_out,
            "09": self._check_in,
            "17": self._item_information,
            "29": self._renew,
            "65": self._renew_all,
            "35": self._end_session,
            "37": self._fee_paid,
            "01": self._block_patron,
            "15": self._not_supported_hold,
            "19": self._not_supported_status_update,
            "25": self._patron_status,  # patron enable: Qor answers with the patron's status
        }
        return handlers[request.command](request)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def _now(self) -> str:
        return stamp(self._clock())

    @property
    def _actor(self) -> str:
        assert self.account is not None
        return self.account.actor

    # --- 93 / 99 / 35 --------------------------------------------------------------------

    def _login(self, request: Request) -> Response | None:
        login, password = request.get("CN"), request.get("CO")
        account = authenticate(self._config.accounts, login, password)
        if account is None:
            self.failures += 1
            logger.warning(
                "sip2 %s: login %r refused (%d of %d)", self.peer, login, self.failures,
                MAX_LOGIN_FAILURES,
            )
            if self.failures >= MAX_LOGIN_FAILURES:
                self.closed = True
            return Response("94", "0")
        self.account = account
        logger.info(
            "sip2 %s: %s logged in at service point %s", self.peer, login, account.service_point
        )
        return Response("94", "1")

    def _status(self, request: Request) -> Response:
        online = self.account is not None
        fixed = (
            yn(online)  # on-line status
            + yn(online)  # check-in ok
            + yn(online)  # check-out ok
            + "Y"  # ACS renewal policy
            + "N"  # status update ok
            + "N"  # off-line ok
            + f"{self._config.timeout_s:03d}"[:3]
            + "003"  # retries allowed
            + self._now()
            + "2.00"
        )
        point = self.account.service_point if self.account else None
        return (
            Response("98", fixed)
            .add("AO", self._config.institution)
            .add("AM", self._config.library_name)
            .add("BX", SUPPORTED)
            .add("AN", point)
        )

    def _end_session(self, request: Request) -> Response:
        logger.info("sip2 %s: patron session of %s ended", self.peer, request.get("AA"))
        return (
            Response("36", "Y" + self._now())
            .add("AO", self._config.institution)
            .add("AA", request.get("AA"))
        )

    # --- patrons -------------------------------------------------------------------------

    def _reader_facts(self, session: Session, ticket: str) -> _ReaderFacts | None:
        reader = session.scalar(select(Reader).where(Reader.ticket_number == ticket))
        if reader is None:
            return None
        today = self._clock().date()
        calendar = self._calendar.get(session)
        loans = session.execute(
            select(Loan.due_on, Item.inventory_number, BibRecord.title)
            .join(Item, Item.id == Loan.item_id)
            .join(BibRecord, BibRecord.id == Item.record_id)
            .where(Loan.reader_id == reader.id, Loan.returned_at.is_(None))
            .order_by(Loan.due_on, Loan.id)
        ).all()
        charged = [inv for _, inv, _ in loans]
        overdue = [
            inv for due, inv, _ in loans if circulation.effective_due(due, calendar) < today
        ]
        holds = session.execute(
            select(Hold.status, BibRecord.title)
            .join(BibRecord, BibRecord.id == Hold.record_id)
            .where(
                Hold.reader_id == reader.id,
                Hold.status.in_([HoldStatus.WAITING.value, HoldStatus.READY.value]),
            )
            .order_by(Hold.placed_at, Hold.id)
        ).all()
        return _ReaderFacts(
            reader=reader,
            charged=charged,
            overdue=overdue,
            ready_holds=[t for s, t in holds if s == HoldStatus.READY],
            waiting_holds=[t for s, t in holds if s == HoldStatus.WAITING],
        )

    def _status_flags(self, facts: _ReaderFacts | None) -> str:
        # 14 flags: charge, renewal, recall, hold privileges denied, card lost, too many
        # charged, too many overdue, too many renewals, claims returned, lost, fines, fees,
        # recall overdue, billed.
        flags = [" "] * 14
        if facts is None:
            flags[0:4] = ["Y"] * 4
        else:
            if facts.reader.status == ReaderStatus.BLOCKED:
                flags[0:4] = ["Y"] * 4
            if len(facts.overdue) > self._config.policy.debt_limit:
                flags[0] = flags[1] = flags[3] = flags[6] = "Y"  # R16: the debt limit
        return "".join(flags)

    def _screen(self, facts: _ReaderFacts | None, ticket: str) -> list[str]:
        if facts is None:
            return [f"no reader with ticket number {ticket}"]
        reader = facts.reader
        if reader.status == ReaderStatus.BLOCKED:
            return [f"blocked: {reader.blocked_reason or 'no reason recorded'} (R16)"]
        if len(facts.overdue) > self._config.policy.debt_limit:
            return [f"{len(facts.overdue)} overdue item(s): please return them first (R16)"]
        return []

    def _password(self, request: Request) -> bool | None:
        """The reader's password check for CQ: ``None`` when not checked (the machine sent none
        and its account does not require one), else whether it is right. Only a check the
        connection has not made yet opens a transaction (its own, so a counted failure is kept
        though the operation is then refused): a card alone costs no round trip."""
        ticket, password = request.get("AA"), request.get("AD")
        assert self.account is not None
        if not password:
            return False if self.account.requires_patron_pin else None
        key = (ticket, hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest())
        if key in self._verified:
            return True
        check = self._config.patron_passwords
        right: bool | None = None
        if check is not None:
            with self._tx() as s:
                right = check(s, ticket=ticket, password=password,
                              source=self.peer.rsplit(":", 1)[0])
        if right:
            self._verified.add(key)
            return True
        logger.warning("sip2 %s: reader %s: %s password", self.peer, ticket,
                       "wrong" if right is False else "uncheckable")
        return False

    def _password_refusal(self, request: Request) -> str | None:
        """Why the reader's password refuses this operation, or ``None``."""
        if self._password(request) is False:
            if not request.get("AD"):
                return "this machine needs your PIN: please enter it"
            return "wrong PIN"
        return None

    def _patron_status(self, request: Request) -> Response:
        ticket = request.get("AA")
        ok = self._password(request)
        with self._tx() as s:
            facts = self._reader_facts(s, ticket)
        return self._patron_status_reply(request, facts, ticket, password_ok=ok)

    def _patron_status_reply(
        self, request: Request, facts: _ReaderFacts | None, ticket: str, *,
        password_ok: bool | None = None,
    ) -> Response:
        command = "26" if request.command == "25" else "24"
        known = facts is not None
        if password_ok is False:
            facts = None  # a wrong PIN learns nothing of the reader but that the card is valid
        reply = (
            Response(command, self._status_flags(facts) + LANGUAGE + self._now())
            .add("AO", self._config.institution)
            .add("AA", ticket)
            .add("AE", facts.reader.name if facts else "")
            .add("BL", yn(known))
        )
        if password_ok is not None:
            reply.add("CQ", yn(password_ok))
        if password_ok is False:
            return reply.add("AF", "wrong PIN" if request.get("AD") else "please enter your PIN")
        return reply.extend("AF", self._screen(facts, ticket))

    def _patron_information(self, request: Request) -> Response:
        ticket = request.get("AA")
        ok = self._password(request)
        if ok is False:
            with self._tx() as s:
                known = s.scalar(select(Reader.id).where(Reader.ticket_number == ticket))
            return (
                Response("64", self._status_flags(None) + LANGUAGE + self._now()
                         + "0000" * 3 + "0000" + "    " + "0000")
                .add("AO", self._config.institution)
                .add("AA", ticket)
                .add("AE", "")
                .add("BL", yn(known is not None))
                .add("CQ", "N")
                .add("AF", "wrong PIN" if request.get("AD") else "please enter your PIN")
            )
        with self._tx() as s:
            facts = self._reader_facts(s, ticket)
        summary = request.fixed[21:31]
        start = _int(request.get("BP"), 1)
        end = _int(request.get("BQ"), start + 4)

        def window(values: list[str]) -> list[str]:
            return values[max(start, 1) - 1 : max(end, start)]

        empty: list[str] = []
        charged = facts.charged if facts else empty
        overdue = facts.overdue if facts else empty
        ready = facts.ready_holds if facts else empty
        waiting = facts.waiting_holds if facts else empty
        fixed = (
            self._status_flags(facts)
            + LANGUAGE
            + self._now()
            + f"{len(ready):04d}"
            + f"{len(overdue):04d}"
            + f"{len(charged):04d}"
            + "0000"  # fine items: Qor keeps no fines (R16 debts are items, not money)
            + "    "  # recall items: Qor does not recall
            + f"{len(waiting):04d}"
        )
        reply = (
            Response("64", fixed)
            .add("AO", self._config.institution)
            .add("AA", ticket)
            .add("AE", facts.reader.name if facts else "")
            .add("BL", yn(facts is not None))
        )
        if ok is not None:
            reply.add("CQ", "Y")
        # The summary asks for one list: hold, overdue, charged, fine, recall, unavailable holds.
        lists = [("AS", ready), ("AT", overdue), ("AU", charged), ("AV", empty), ("BU", empty),
                 ("CD", waiting)]
        for position, (field_id, values) in enumerate(lists):
            if summary[position : position + 1] == "Y":
                reply.extend(field_id, window(values))
                break
        if facts is not None:
            reply.add("BE", facts.reader.email).add("BF", facts.reader.phone)
        return reply.extend("AF", self._screen(facts, ticket))

    def _block_patron(self, request: Request) -> Response:
        ticket = request.get("AA")
        message = request.get("AL") or "blocked at a self-check machine"
        retained = " (card retained)" if request.flag(0) else ""
        try:
            with self._tx() as s:
                # The same domain call as `qor readers block`: audited, reason kept.
                readers.block_reader(
                    s, ticket, reason=f"SIP2 {self._actor}: {message}{retained}", actor=self._actor
                )
            logger.warning("sip2 %s: reader %s blocked: %s", self.peer, ticket, message)
        except ReaderNotFound:
            logger.warning("sip2 %s: block of unknown reader %s", self.peer, ticket)
        with self._tx() as s:
            facts = self._reader_facts(s, ticket)
        return self._patron_status_reply(request, facts, ticket)

    # --- items ---------------------------------------------------------------------------

    def _check_out(self, request: Request) -> Response:
        ticket, code = request.get("AA"), request.get("AB")
        assert self.account is not None
        point = self.account.service_point
        reply_fixed = "1N" + "U" + "Y" + self._now()
        refusal = self._password_refusal(request)
        if refusal is not None:
            return self._check_out_refused(request, refusal)
        try:
            with self._tx() as s:
                loan = circulation.check_out(
                    s,
                    item_code=code,
                    ticket_number=ticket,
                    service_point=point,
                    actor=self._actor,
                    policy=self._config.policy,
                    calendar=self._calendar.get(s),
                )
                due, title = loan.due_on, _title(s, loan.item_id)
        except LoanRefused as e:
            if e.reason == "on_loan" and request.flag(0):
                renewed = self._renew_as_check_out(request)
                if renewed is not None:
                    return renewed
            return self._check_out_refused(request, str(e))
        except QorError as e:
            return self._check_out_refused(request, str(e))
        logger.info("sip2 %s: %s lent to %s at %s", self.peer, code, ticket, point)
        # R10: the domain disarmed the tag in the same transaction: tell the machine to
        # desensitize the item (desensitize = Y).
        return (
            Response("12", reply_fixed)
            .add("AO", self._config.institution)
            .add("AA", ticket)
            .add("AB", code)
            .add("AJ", title)
            .add("AH", day_stamp(due))
            .add("AF", f"due {due.isoformat()}")
        )

    def _check_out_refused(self, request: Request, message: str) -> Response:
        logger.info("sip2 %s: check-out of %s refused: %s", self.peer, request.get("AB"), message)
        return (
            Response("12", "0N" + "U" + "N" + self._now())
            .add("AO", self._config.institution)
            .add("AA", request.get("AA"))
            .add("AB", request.get("AB"))
            .add("AJ", "")
            .add("AH", "")
            .add("AF", message)
        )

    def _renew_as_check_out(self, request: Request) -> Response | None:
        # The SC renewal policy lets a machine renew by checking out an item the same reader
        # already has (the spec's "renewal ok" flag).
        reply = self._renew(request)
        if reply.fixed[:1] != "1":
            return None
        return Response("12", "1YUY" + reply.fixed[4:], reply.fields)

    def _check_in(self, request: Request) -> Response:
        code = request.get("AB")
        returned = parse_stamp(request.fixed[19:37])
        today = self._clock().date()
        backdated = returned if returned is not None and returned < today else None
        location = self.account.service_point if self.account else ""
        try:
            with self._tx() as s:
                back = circulation.check_in(
                    s,
                    item_code=code,
                    actor=self._actor,
                    returned_on=backdated,
                    policy=self._config.policy,
                    calendar=self._calendar.get(s),
                )
                # What the machine shows, in one more round trip: title, shelf, the reader.
                facts = s.execute(
                    select(BibRecord.title, Item.location, Reader.ticket_number)
                    .select_from(Loan)
                    .join(Item, Item.id == Loan.item_id)
                    .join(BibRecord, BibRecord.id == Item.record_id)
                    .outerjoin(Reader, Reader.id == Loan.reader_id)
                    .where(Loan.id == back.loan.id)
                ).first()
                title, home, ticket = facts if facts is not None else ("", None, None)
        except QorError as e:
            logger.info("sip2 %s: check-in of %s refused: %s", self.peer, code, e)
            return (
                Response("10", "0NUN" + self._now())
                .add("AO", self._config.institution)
                .add("AB", code)
                .add("AQ", "")
                .add("AF", str(e))
            )
        kept = back.kept_for is not None
        if back.hold_id is not None:
            self._notify_hold_ready(back.hold_id)
        logger.info("sip2 %s: %s returned at %s%s", self.peer, code, location,
                    " (kept for a hold)" if kept else "")
        messages = []
        if back.overdue_days:
            messages.append(f"{back.overdue_days} day(s) overdue")
        if kept:
            # The item is trapped for the next reader in this same transaction: the machine
            # sorts it to the hold shelf (alert = Y, sort bin HOLD).
            messages.append("kept for a reader's hold: put it on the hold shelf")
        # R10: the domain armed the tag again in the same transaction (resensitize = Y).
        return (
            Response("10", "1Y" + "U" + yn(kept) + self._now())
            .add("AO", self._config.institution)
            .add("AB", code)
            .add("AQ", home or "")
            .add("AJ", title)
            .add("CL", "HOLD" if kept else None)
            .add("AA", ticket)
            .extend("AF", messages)
        )

    def _notify_hold_ready(self, hold_id: int) -> None:
        # After the commit, off the machine's thread: the kiosk's reply does not wait for SMTP.
        mailer = self._config.mailer
        if mailer is None:
            return
        with self._tx() as s:
            message = circulation.hold_ready_message(
                s, hold_id, sender=self._config.mail_sender, library=self._config.library_name,
                pickup_days=self._config.policy.hold_pickup_days,
            )
        if message is None:
            logger.info("sip2 %s: hold %s is ready; the reader has no e-mail", self.peer, hold_id)
            return

        def send() -> None:
            try:
                mailer.send(message)
            except QorError as e:
                logger.warning("sip2: hold %s ready, notice not sent: %s", hold_id, e)

        threading.Thread(target=send, name=f"hold-notice-{hold_id}", daemon=True).start()

    def _item_information(self, request: Request) -> Response:
        code = request.get("AB")
        with self._tx() as s:
            try:
                item = circulation.find_item_facts(s, code)  # read only: no ORM object
            except ItemNotFound as e:
                return (
                    Response("18", "01" + "00" + "01" + self._now())
                    .add("AB", code)
                    .add("AJ", "")
                    .add("AF", str(e))
                )
            loan = s.scalar(
                select(Loan).where(Loan.item_id == item.id, Loan.returned_at.is_(None))
            )
            ready = s.scalar(
                select(Hold.id).where(Hold.item_id == item.id, Hold.status == HoldStatus.READY)
            )
            queue = len(circulation.hold_queue(s, item.record_id))
            status = _CIRCULATION_STATUS.get(item.status, "01")
            if ready is not None and item.status == ItemStatus.AVAILABLE:
                status = "08"  # waiting on the hold shelf
            title, location = _title(s, item.id), item.location
            due = loan.due_on if loan else None
        return (
            Response("18", status + "00" + "01" + self._now())
            .add("CF", str(queue))
            .add("AH", day_stamp(due) if due else None)
            .add("AB", code)
            .add("AJ", title)
            .add("BG", self._config.institution)
            .add("AQ", location)
            .add("AP", location)
        )

    def _renew(self, request: Request) -> Response:
        ticket, code = request.get("AA"), request.get("AB")
        try:
            refusal = self._password_refusal(request)
            if refusal is not None:
                raise LoanRefused("patron_password", refusal)
            with self._tx() as s:
                self._own_loan(s, code, ticket)
                loan = circulation.renew(
                    s,
                    item_code=code,
                    actor=self._actor,
                    policy=self._config.policy,
                    calendar=self._calendar.get(s),
                )
                due, title = loan.due_on, _title(s, loan.item_id)
        except QorError as e:
            logger.info("sip2 %s: renewal of %s refused: %s", self.peer, code, e)
            return (
                Response("30", "0NUN" + self._now())
                .add("AO", self._config.institution)
                .add("AA", ticket)
                .add("AB", code)
                .add("AJ", "")
                .add("AH", "")
                .add("AF", str(e))
            )
        return (
            Response("30", "1YUN" + self._now())
            .add("AO", self._config.institution)
            .add("AA", ticket)
            .add("AB", code)
            .add("AJ", title)
            .add("AH", day_stamp(due))
            .add("AF", f"renewed, due {due.isoformat()}")
        )

    def _own_loan(self, session: Session, code: str, ticket: str) -> None:
        # A machine renews only the loans of the reader whose card it read.
        holder = session.scalar(
            select(Reader.ticket_number)
            .join(Loan, Loan.reader_id == Reader.id)
            .join(Item, Item.id == Loan.item_id)
            .where(
                Loan.returned_at.is_(None),
                (Item.inventory_number == code) | (Item.barcode == code) | (Item.rfid == code),
            )
        )
        if holder is None:
            raise LoanNotFound(f"item {code} is not on loan")
        if holder != ticket:
            raise LoanRefused("not_your_loan", f"item {code} is not on loan to reader {ticket}")

    def _renew_all(self, request: Request) -> Response:
        ticket = request.get("AA")
        renewed: list[str] = []
        refused: list[str] = []
        messages: list[str] = []
        try:
            refusal = self._password_refusal(request)
            if refusal is not None:
                raise LoanRefused("patron_password", refusal)
            with self._tx() as s:
                readers.get_reader(s, ticket)
                codes = [
                    inv
                    for (inv,) in s.execute(
                        select(Item.inventory_number)
                        .join(Loan, Loan.item_id == Item.id)
                        .join(Reader, Reader.id == Loan.reader_id)
                        .where(Reader.ticket_number == ticket, Loan.returned_at.is_(None))
                        .order_by(Loan.due_on, Loan.id)
                    )
                ]
        except QorError as e:
            return (
                Response("66", "0" + "0000" + "0000" + self._now())
                .add("AO", self._config.institution)
                .add("AF", str(e))
            )
        for code in codes:
            # Each renewal is its own transaction: one refused loan leaves the others renewed.
            try:
                with self._tx() as s:
                    circulation.renew(
                        s,
                        item_code=code,
                        actor=self._actor,
                        policy=self._config.policy,
                        calendar=self._calendar.get(s),
                    )
                renewed.append(code)
            except QorError as e:
                refused.append(code)
                messages.append(f"{code}: {e}")
        return (
            Response("66", "1" + f"{len(renewed):04d}" + f"{len(refused):04d}" + self._now())
            .add("AO", self._config.institution)
            .extend("BM", renewed)
            .extend("BN", refused)
            .extend("AF", messages)
        )

    # --- fees ----------------------------------------------------------------------------

    def _fee_paid(self, request: Request) -> Response:
        """Qor keeps no fines; the one payment it knows is R16 compensation for a lost item:
        the fee identifier (CG) is the loan id and the amount (BV) is in tenge."""
        ticket, loan_ref = request.get("AA"), request.get("CG")
        currency = request.fixed[22:25]
        if currency.strip() and currency != "KZT":
            return self._fee_refused(request, f"payments are taken in tenge (KZT), not {currency}")
        try:
            amount = Decimal(request.get("BV"))
            tiyn = int(amount * 100)
            if tiyn <= 0 or amount * 100 != tiyn:
                raise InvalidOperation
        except InvalidOperation:
            return self._fee_refused(request, f"fee amount {request.get('BV')!r} is not a sum")
        if not loan_ref.isdigit():
            return self._fee_refused(
                request, "Qor keeps no fees: a payment names a lost item's loan id (CG)"
            )
        refusal = self._password_refusal(request)
        if refusal is not None:
            return self._fee_refused(request, refusal)
        try:
            with self._tx() as s:
                loan = s.get(Loan, int(loan_ref))
                if loan is None or loan.reader is None or loan.reader.ticket_number != ticket:
                    raise LoanNotFound(f"reader {ticket} has no loan {loan_ref}")
                circulation.settle_loan(
                    s,
                    int(loan_ref),
                    how=Settlement.COMPENSATED,
                    actor=self._actor,
                    compensation_minor=tiyn,
                    note=f"paid at {self._actor}, transaction {request.get('BK') or '-'}",
                    policy=self._config.policy,
                    calendar=self._calendar.get(s),
                )
        except QorError as e:
            return self._fee_refused(request, str(e))
        logger.info("sip2 %s: loan %s compensated by %s", self.peer, loan_ref, ticket)
        return (
            Response("38", "Y" + self._now())
            .add("AO", self._config.institution)
            .add("AA", ticket)
            .add("BK", request.get("BK") or None)
            .add("AF", f"loan {loan_ref} settled (R16)")
        )

    def _fee_refused(self, request: Request, message: str) -> Response:
        return (
            Response("38", "N" + self._now())
            .add("AO", self._config.institution)
            .add("AA", request.get("AA"))
            .add("AF", message)
        )

    # --- not supported ------------------------------------------------------------------

    def _not_supported_hold(self, request: Request) -> Response:
        return (
            Response("16", "0N" + self._now())
            .add("AO", self._config.institution)
            .add("AA", request.get("AA"))
            .add("AF", "holds are placed at the desk or in the e-library")
        )

    def _not_supported_status_update(self, request: Request) -> Response:
        return (
            Response("20", "0" + self._now())
            .add("AB", request.get("AB"))
            .add("AF", "item properties are kept in the register")
        )


@dataclass(frozen=True)
class _ReaderFacts:
    reader: Reader
    charged: list[str]
    overdue: list[str]
    ready_holds: list[str]
    waiting_holds: list[str]


def _title(session: Session, item_id: int | None) -> str:
    if item_id is None:
        return ""
    title = session.scalar(
        select(BibRecord.title).join(Item, Item.record_id == BibRecord.id).where(
            Item.id == item_id
        )
    )
    return title or ""


def _int(value: str, default: int) -> int:
    return int(value) if value.strip().isdigit() else default
