"""The per-dataset privacy budget: how much epsilon the evidence about each sensitive data set has spent.

Every differentially private release into evidence (:mod:`airflow_mlsecops.privacy.dp_evidence`)
spends epsilon from the budget of each sensitive data set it is about. The budget lives in the
evidence ledger's database (``ledger_url``; SQLite or PostgreSQL), table ``mlsecops_dp_budget``, one
row per data set (the policy entry's name and the data's digest), with every spend logged in
``mlsecops_dp_budget_spends``. A spend is one transaction: a conditional ``UPDATE ... SET spent =
spent + e WHERE spent + e <= total`` per data set, so two workers spending at once can never take
the total past the budget (the database serialises the updates of a row; amounts are kept in
micro-epsilon integers, so ten releases of 0.1 add up to exactly 1).

>>> ledger = BudgetLedger("sqlite://")
>>> ledger.spend(["loans@sha256:ab"], 0.5, total=1.0).granted
True
>>> ledger.spend(["loans@sha256:ab"], 0.75, total=1.0).granted
False
>>> ledger.spent("loans@sha256:ab")
0.5
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from airflow_mlsecops.exceptions import ConfigurationError, StoreUnavailable

TABLE_NAME = "mlsecops_dp_budget"
SPENDS_TABLE_NAME = "mlsecops_dp_budget_spends"
#: Budgets are kept in integer micro-epsilon: sums are exact, comparisons never off by a rounding error.
MICRO = 1_000_000

_metadata = sa.MetaData()
budget_table = sa.Table(
    TABLE_NAME,
    _metadata,
    sa.Column("dataset", sa.String(400), primary_key=True),
    sa.Column("spent_micro", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
spends_table = sa.Table(
    SPENDS_TABLE_NAME,
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(400), nullable=False, index=True),
    sa.Column("epsilon_micro", sa.BigInteger, nullable=False),
    sa.Column("total_micro", sa.BigInteger, nullable=False),
    sa.Column("gate", sa.String(200)),
    sa.Column("created_at", sa.String(40), nullable=False),
)


class _Refused(Exception):
    """A data set's budget would go past its total: the transaction is rolled back."""


def dataset_key(name: str, digest: str) -> str:
    """The budget's key of a data set: the policy entry's name and the data's digest (``loans@sha256:<hex>``)."""
    return f"{name}@sha256:{digest.lower().removeprefix('sha256:')}"


def to_micro(epsilon: float) -> int:
    """``epsilon`` in micro-epsilon, rounded up (a spend is never under-counted)."""
    scaled = epsilon * MICRO
    whole = int(scaled)
    return whole if whole >= scaled - 1e-6 else whole + 1


@dataclass(frozen=True)
class BudgetSpend:
    """The answer to a spend: granted or not, and each data set's spent total after it."""

    granted: bool
    epsilon: float
    total: float
    spent: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"granted": self.granted, "epsilon": self.epsilon, "total": self.total, "spent": dict(self.spent)}


class BudgetLedger:
    """The privacy budget of each sensitive data set, in a SQLAlchemy database (the evidence ledger's).

    :param url: a SQLAlchemy URL (``settings.ledger_url``).
    :param create: create the tables if missing.
    :raises ConfigurationError: not a SQLAlchemy URL.
    :raises StoreUnavailable: the database cannot be reached or the tables cannot be created.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        try:
            sa_url = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise ConfigurationError(f"budget ledger URL {url!r} is not a SQLAlchemy URL") from exc
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if sa_url.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            if not sa_url.database or sa_url.database == ":memory:":
                kwargs["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
            else:
                Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = sa.create_engine(sa_url, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigurationError(f"cannot open budget database {sa_url.render_as_string(hide_password=True)}: {exc}") from exc
        self._display_url = sa_url.render_as_string(hide_password=True)
        self._memory_lock = threading.Lock() if "poolclass" in kwargs else None
        if create:
            self.create_schema()

    def __repr__(self) -> str:
        return f"BudgetLedger({self._display_url})"

    def create_schema(self) -> None:
        try:
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(872352)"))  # first-time creation by several workers
                _metadata.create_all(conn, checkfirst=True)
        except IntegrityError:
            pass  # another worker created it between the check and the creation
        except OperationalError as exc:
            if "already exists" not in str(exc.orig):
                raise StoreUnavailable(f"budget database {self._display_url} is unreachable: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot create the budget tables in {self._display_url}: {exc}") from exc

    def spent(self, dataset: str) -> float:
        """The epsilon spent so far on ``dataset`` (0 when it has never been released)."""
        try:
            with self.engine.connect() as conn:
                value = conn.execute(sa.select(budget_table.c.spent_micro).where(budget_table.c.dataset == dataset)).scalar()
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot read the privacy budget in {self._display_url}: {exc}") from exc
        return (value or 0) / MICRO

    def spend(self, datasets: Sequence[str], epsilon: float, *, total: float, gate: str | None = None) -> BudgetSpend:
        """Spend ``epsilon`` from the budget of every data set in ``datasets``, all or none.

        Refused (``granted=False``, nothing spent) when any of them would go past ``total``.

        :raises StoreUnavailable: the database failed (the caller must then release nothing).
        """
        keys = sorted(set(datasets))  # one order for every writer: no deadlock between two spends
        if not keys:
            raise ValueError("a spend needs at least one data set")
        amount, limit = to_micro(epsilon), round(total * MICRO)
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        for attempt in range(50):
            try:
                if self._memory_lock is not None:
                    with self._memory_lock:
                        return self._spend_once(keys, amount, limit, epsilon, total, gate, now)
                return self._spend_once(keys, amount, limit, epsilon, total, gate, now)
            except IntegrityError:
                continue  # two first spends of a new data set: the loser retries on the row the winner made
            except OperationalError as exc:
                if "locked" in str(exc.orig) and attempt < 49:
                    continue
                raise StoreUnavailable(f"budget database {self._display_url} is unreachable: {exc.orig}") from exc
            except SQLAlchemyError as exc:
                raise StoreUnavailable(f"cannot spend from the privacy budget in {self._display_url}: {exc}") from exc
        raise StoreUnavailable("could not spend from the privacy budget after 50 attempts (heavy contention)")

    def _spend_once(
        self, keys: list[str], amount: int, limit: int, epsilon: float, total: float, gate: str | None, now: str
    ) -> BudgetSpend:
        try:
            spent = self._spend_in_transaction(keys, amount, limit, gate, now)
        except _Refused:
            return BudgetSpend(False, epsilon, total, {k: self._spent_in(k) for k in keys})
        return BudgetSpend(True, epsilon, total, spent)

    def _spend_in_transaction(self, keys: list[str], amount: int, limit: int, gate: str | None, now: str) -> dict[str, float]:
        spent: dict[str, float] = {}
        with self.engine.begin() as conn:
            for key in keys:
                exists = conn.execute(sa.select(budget_table.c.dataset).where(budget_table.c.dataset == key)).first()
                if exists is None:
                    conn.execute(budget_table.insert().values(dataset=key, spent_micro=0, updated_at=now))
                updated = conn.execute(
                    budget_table.update()
                    .where(budget_table.c.dataset == key, budget_table.c.spent_micro + amount <= limit)
                    .values(spent_micro=budget_table.c.spent_micro + amount, updated_at=now)
                )
                if updated.rowcount != 1:
                    raise _Refused  # leaving the block rolls back what this spend wrote for the other data sets
                conn.execute(
                    spends_table.insert().values(dataset=key, epsilon_micro=amount, total_micro=limit, gate=gate, created_at=now)
                )
                value = conn.execute(sa.select(budget_table.c.spent_micro).where(budget_table.c.dataset == key)).scalar_one()
                spent[key] = value / MICRO
        return spent

    def _spent_in(self, key: str) -> float:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(budget_table.c.spent_micro).where(budget_table.c.dataset == key)).scalar()
        return (value or 0) / MICRO

    def dispose(self) -> None:
        self.engine.dispose()
