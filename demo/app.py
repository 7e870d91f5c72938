"""The demo business application: a small quoting backend in the spirit of the seeds.

Tenants, sales reps, clients, quotes with items, expenses and payments in
PostgreSQL through SQLAlchemy 2 with a real ``QueuePool``; dashboard KPIs
cached in Redis with a TTL (and tenant settings cached without one, the
mistake dbpulse's TTL check is there to catch); Celery-style task messages
pushed onto Redis lists; ``/health``, ``/health/live`` and ``/health/ready``
in the seeds' JSON shapes, with the SQLAlchemy pool block.

Some endpoints carry the ORM patterns the advisor is built to find: a list of
quotes that touches a lazy relationship in a loop (N+1), items loaded
``selectin``-style through an unindexed foreign key, payments looked up by an
unindexed external id, and a tenant's quotes listed by date without an index.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
import redis.asyncio as aioredis
from aiohttp import web
from sqlalchemy import Boolean, ForeignKey, Numeric, String, create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload
from sqlalchemy.pool import QueuePool

log = logging.getLogger("dbpulse.demo.app")

SERVICE = "dbpulse-demo-api"
VERSION = "1.0.0"
APPLICATION_NAME = "demo-api"
POOL_SIZE = 5
MAX_OVERFLOW = 5
KPI_TTL_SECONDS = 20
SESSION_TTL_SECONDS = 1800
QUEUES = ("celery", "emails")
T = TypeVar("T")


# --- schema and seed data ---------------------------------------------------
SCHEMA = """
CREATE TABLE tenants (
    id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sales_reps (
    id serial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants, name text NOT NULL,
    email text NOT NULL, active boolean NOT NULL DEFAULT true);
CREATE TABLE clients (
    id serial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants, sales_rep_id int REFERENCES sales_reps,
    name text NOT NULL, email text, created_at timestamptz NOT NULL);
CREATE TABLE quotes (
    id serial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants, client_id int NOT NULL REFERENCES clients,
    sales_rep_id int REFERENCES sales_reps, number text NOT NULL, status text NOT NULL,
    is_archived boolean NOT NULL DEFAULT false, total numeric(12, 2) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL);
CREATE TABLE quote_items (
    id serial PRIMARY KEY, quote_id int NOT NULL REFERENCES quotes, product text NOT NULL,
    quantity int NOT NULL, unit_price numeric(12, 2) NOT NULL);
CREATE TABLE expenses (
    id serial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants, sales_rep_id int REFERENCES sales_reps,
    category text NOT NULL, amount numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE payments (
    id serial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants, quote_id int REFERENCES quotes,
    external_id text NOT NULL, amount numeric(12, 2) NOT NULL, created_at timestamptz NOT NULL);

-- Planted index problems (the advisor should name each of them):
CREATE INDEX ix_quotes_is_archived ON quotes (is_archived);         -- a boolean: low selectivity
CREATE INDEX ix_clients_tenant ON clients (tenant_id);
CREATE INDEX ix_clients_tenant_id ON clients (tenant_id);           -- duplicate of ix_clients_tenant
CREATE INDEX ix_quotes_client ON quotes (client_id);                -- redundant: prefix of the next one
CREATE INDEX ix_quotes_client_status ON quotes (client_id, status);
CREATE INDEX ix_expenses_category ON expenses (category);           -- never used by the application
-- and missing: payments (external_id), quote_items (quote_id), quotes (tenant_id, created_at)
"""

SEED = """
INSERT INTO tenants (name) SELECT 'Tenant ' || i FROM generate_series(1, {tenants}) i;
INSERT INTO sales_reps (tenant_id, name, email, active)
  SELECT 1 + (i % {tenants}), 'Rep ' || i, 'rep' || i || '@example.com', i % 7 <> 0
  FROM generate_series(1, {reps}) i;
INSERT INTO clients (tenant_id, sales_rep_id, name, email, created_at)
  SELECT 1 + (i % {tenants}), 1 + (i % {reps}), 'Client ' || i, 'client' || i || '@example.com',
         now() - (i % 900) * interval '1 day'
  FROM generate_series(1, {clients}) i;
INSERT INTO quotes (tenant_id, client_id, sales_rep_id, number, status, is_archived, total, created_at)
  SELECT c.tenant_id, c.id, c.sales_rep_id, 'Q-' || lpad(i::text, 7, '0'),
         (ARRAY['draft', 'sent', 'accepted', 'rejected'])[1 + i % 4], i % 10 = 0,
         round((random() * 5000)::numeric, 2), now() - (i % 730) * interval '1 day' - (i % 86400) * interval '1 s'
  FROM generate_series(1, {quotes}) i JOIN clients c ON c.id = 1 + (i % {clients});
INSERT INTO quote_items (quote_id, product, quantity, unit_price)
  SELECT 1 + (i % {quotes}), 'Product ' || (i % 250), 1 + i % 9, round((random() * 300)::numeric, 2)
  FROM generate_series(1, {items}) i;
INSERT INTO expenses (tenant_id, sales_rep_id, category, amount, created_at)
  SELECT 1 + (i % {tenants}), 1 + (i % {reps}), (ARRAY['travel', 'meals', 'software', 'fuel', 'other'])[1 + i % 5],
         round((random() * 400)::numeric, 2), now() - (i % 365) * interval '1 day'
  FROM generate_series(1, {expenses}) i;
INSERT INTO payments (tenant_id, quote_id, external_id, amount, created_at)
  SELECT q.tenant_id, q.id, 'pay_' || md5(i::text), q.total, q.created_at + interval '3 days'
  FROM generate_series(1, {payments}) i JOIN quotes q ON q.id = 1 + (i * 7 % {quotes});
"""

SIZES = {"tenants": 20, "reps": 400, "clients": 8000, "quotes": 40000, "items": 160000,
         "expenses": 30000, "payments": 30000}


def external_id(i: int) -> str:
    """The external id seeded for payment ``i`` (1-based), so the load generator can look them up."""
    import hashlib

    return "pay_" + hashlib.md5(str(i).encode()).hexdigest()  # an id, not security


def create_schema(dsn: str, scale: float = 1.0) -> dict[str, int]:
    """Create the tables (with their planted index problems) and seed them; returns the row counts."""
    sizes = {k: max(1, int(v * scale)) if k != "tenants" else v for k, v in SIZES.items()}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        with conn.transaction():
            conn.execute(SEED.format(**sizes))
        conn.execute("ANALYZE")
    return sizes


# --- ORM models -------------------------------------------------------------
class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime]


class SalesRep(Base):
    __tablename__ = "sales_reps"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str]
    email: Mapped[str]
    active: Mapped[bool] = mapped_column(Boolean)


class Client(Base):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    sales_rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id"))
    name: Mapped[str]
    email: Mapped[str | None]
    created_at: Mapped[datetime]


class Quote(Base):
    __tablename__ = "quotes"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    sales_rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id"))
    number: Mapped[str]
    status: Mapped[str]
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime]
    client: Mapped[Client] = relationship(lazy="select")  # touched in a loop: the N+1
    items: Mapped[list[QuoteItem]] = relationship(lazy="select", back_populates="quote")


class QuoteItem(Base):
    __tablename__ = "quote_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    quote_id: Mapped[int] = mapped_column(ForeignKey("quotes.id"))
    product: Mapped[str]
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    quote: Mapped[Quote] = relationship(back_populates="items")


class Expense(Base):
    __tablename__ = "expenses"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    sales_rep_id: Mapped[int | None] = mapped_column(ForeignKey("sales_reps.id"))
    category: Mapped[str]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime]


class Payment(Base):
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    quote_id: Mapped[int | None] = mapped_column(ForeignKey("quotes.id"))
    external_id: Mapped[str]
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    created_at: Mapped[datetime]


# --- the application ----------------------------------------------------------
def make_engine(dsn: str, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW) -> Engine:
    """A SQLAlchemy engine on psycopg 3 with a real QueuePool, named so the server sees the pool."""
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    return create_engine(
        url, poolclass=QueuePool, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=10,
        pool_pre_ping=True, pool_recycle=3600, connect_args={"application_name": APPLICATION_NAME},
    )


class DemoApp:
    """The application's state: engine, Redis client, the background worker."""

    def __init__(self, dsn: str, redis_url: str, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW) -> None:
        self.engine = make_engine(dsn, pool_size, max_overflow)
        self.max_overflow = max_overflow
        self.redis: aioredis.Redis = aioredis.from_url(redis_url, decode_responses=True)
        self._worker: asyncio.Task[None] | None = None
        self.work_every = 1.0  # seconds between the worker's rounds

    async def db(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` with a session in a worker thread (the sync engine never blocks the loop)."""
        def call() -> T:
            with Session(self.engine) as session, session.begin():
                return fn(session)

        return await asyncio.to_thread(call)

    def pool_block(self) -> dict[str, int]:
        pool = self.engine.pool
        assert isinstance(pool, QueuePool)
        return {"size": pool.size(), "max_overflow": self.max_overflow, "checked_out": pool.checkedout(),
                "checked_in": pool.checkedin(), "overflow": max(0, pool.overflow())}

    # --- handlers --------------------------------------------------------
    async def list_quotes(self, request: web.Request) -> web.Response:
        """A tenant's latest quotes with their client names: the lazy relationship in a loop (N+1)."""
        tenant_id = int(request.match_info["tenant_id"])
        limit = min(int(request.query.get("limit", "20")), 100)

        def query(session: Session) -> list[dict[str, Any]]:
            quotes = session.scalars(
                select(Quote).where(Quote.tenant_id == tenant_id).order_by(Quote.created_at.desc()).limit(limit)
            ).all()
            return [{"id": q.id, "number": q.number, "status": q.status, "total": str(q.total),
                     "client": q.client.name} for q in quotes]

        return web.json_response(await self.db(query))

    async def list_quotes_detailed(self, request: web.Request) -> web.Response:
        """Quotes with items loaded selectin-style: ``quote_items.quote_id IN (...)``, an unindexed FK."""
        tenant_id = int(request.match_info["tenant_id"])
        status = request.query.get("status", "sent")

        def query(session: Session) -> list[dict[str, Any]]:
            quotes = session.scalars(
                select(Quote).options(selectinload(Quote.items))
                .where(Quote.tenant_id == tenant_id, Quote.status == status)
                .order_by(Quote.created_at.desc()).limit(10)
            ).all()
            return [{"id": q.id, "number": q.number,
                     "items": [{"product": i.product, "quantity": i.quantity} for i in q.items]} for q in quotes]

        return web.json_response(await self.db(query))

    async def get_quote(self, request: web.Request) -> web.Response:
        quote_id = int(request.match_info["quote_id"])

        def query(session: Session) -> dict[str, Any] | None:
            quote = session.get(Quote, quote_id)
            if quote is None:
                return None
            return {"id": quote.id, "number": quote.number, "items": len(quote.items)}

        result = await self.db(query)
        if result is None:
            raise web.HTTPNotFound()
        return web.json_response(result)

    async def payment_by_external_id(self, request: web.Request) -> web.Response:
        """Webhook-style lookup by the payment provider's id: no index on ``payments.external_id``."""
        ext = request.match_info["external_id"]

        def query(session: Session) -> dict[str, Any] | None:
            payment = session.scalars(select(Payment).where(Payment.external_id == ext)).first()
            return None if payment is None else {"id": payment.id, "amount": str(payment.amount)}

        result = await self.db(query)
        if result is None:
            raise web.HTTPNotFound()
        return web.json_response(result)

    async def dashboard(self, request: web.Request) -> web.Response:
        """KPIs cached in Redis with a TTL; tenant settings cached without one; a session key with one."""
        tenant_id = int(request.match_info["tenant_id"])
        key = f"dashboard:kpis:{tenant_id}"
        cached = await self.redis.get(key)
        settings_key = f"tenant:settings:{tenant_id}"
        if await self.redis.get(settings_key) is None:
            await self.redis.set(settings_key, json.dumps({"currency": "EUR", "tz": "Europe/Madrid"}))  # no TTL
        await self.redis.set(f"user:session:{uuid.uuid4().hex}", tenant_id, ex=SESSION_TTL_SECONDS)
        if cached is not None:
            return web.json_response({"cached": True, **json.loads(cached)})

        def query(session: Session) -> dict[str, Any]:
            quotes, total = session.execute(
                select(func.count(), func.coalesce(func.sum(Quote.total), 0)).where(Quote.tenant_id == tenant_id)
            ).one()
            expenses = session.execute(
                select(func.coalesce(func.sum(Expense.amount), 0)).where(Expense.tenant_id == tenant_id)
            ).scalar_one()
            return {"quotes": int(quotes), "quoted": str(total), "expenses": str(expenses)}

        kpis = await self.db(query)
        await self.redis.set(key, json.dumps(kpis), ex=KPI_TTL_SECONDS)
        return web.json_response({"cached": False, **kpis})

    async def create_quote(self, request: web.Request) -> web.Response:
        """Insert a quote with items and queue a Celery-style task to e-mail it."""
        tenant_id = int(request.match_info["tenant_id"])
        rng = random.Random()

        def write(session: Session) -> int:
            client_id = session.scalars(
                select(Client.id).where(Client.tenant_id == tenant_id).order_by(func.random()).limit(1)
            ).first()
            if client_id is None:
                raise web.HTTPNotFound()
            quote = Quote(tenant_id=tenant_id, client_id=client_id, number=f"Q-{uuid.uuid4().hex[:10]}",
                          status="draft", total=Decimal("0"), created_at=datetime.now(UTC))
            quote.items = [QuoteItem(product=f"Product {rng.randrange(250)}", quantity=rng.randint(1, 9),
                                     unit_price=Decimal(rng.randrange(100, 30000)) / 100) for _ in range(3)]
            quote.total = sum((i.unit_price * i.quantity for i in quote.items), Decimal("0"))
            session.add(quote)
            session.flush()
            return quote.id

        quote_id = await self.db(write)
        await self.redis.lpush("celery", celery_message("quotes.tasks.generate_quote_pdf", [quote_id]))
        await self.redis.lpush("emails", celery_message("quotes.tasks.send_quote_email", [quote_id]))
        await self.redis.delete(f"dashboard:kpis:{tenant_id}")
        return web.json_response({"id": quote_id}, status=201)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy", "service": SERVICE, "version": VERSION,
                                  "pool": self.pool_block()})

    async def health_live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": SERVICE, "version": VERSION,
                                  "timestamp": datetime.now(UTC).isoformat()})

    async def health_ready(self, request: web.Request) -> web.Response:
        """The seeds' readiness shape: components with their status, ``is_ready``, 503 when not."""
        database: dict[str, Any]
        try:
            await asyncio.wait_for(self.db(lambda s: s.execute(text("SELECT 1")).scalar_one()), 3)
            database = {"status": "healthy", "database": "connected"}
        except Exception as exc:
            database = {"status": "unhealthy", "database": f"error: {type(exc).__name__}"}
        database["pool"] = self.pool_block()
        try:
            info = await asyncio.wait_for(self.redis.info("memory"), 3)
            cache = {"status": "healthy", "redis": "connected", "memory_used": info.get("used_memory_human")}
        except Exception as exc:
            cache = {"status": "unhealthy", "redis": f"error: {type(exc).__name__}"}
        ready = database["status"] == "healthy" and cache["status"] == "healthy"
        body = {"status": "ready" if ready else "not_ready", "timestamp": datetime.now(UTC).isoformat(),
                "components": {"database": database, "redis": cache}, "is_ready": ready}
        return web.json_response(body, status=200 if ready else 503)

    # --- the Celery-ish worker ------------------------------------------------
    async def _work(self) -> None:
        """Consume a few tasks a second, slower than the load produces them: the queue grows, visibly."""
        task = asyncio.current_task()
        while True:
            await asyncio.sleep(self.work_every)
            with contextlib.suppress(Exception):
                for _ in range(3):
                    if await self.redis.rpop("celery") is None:
                        break
                await self.redis.rpop("emails", 20)  # the e-mail worker keeps up
                await self.redis.ltrim("celery", 0, 4999)
            # redis-py (8.2) can return normally from a command whose task was cancelled meanwhile (8 of 40 cancels
            # at random moments): the cancellation is then gone, and this loop would run on for ever, close() with it
            if task is not None and task.cancelling():
                raise asyncio.CancelledError

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="demo-worker")

    async def close(self) -> None:
        if self._worker:
            self._worker.cancel()
            await asyncio.wait({self._worker}, timeout=5)  # bounded all the same: the demo's Ctrl-C must end
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await asyncio.to_thread(self.engine.dispose)


def celery_message(task: str, args: list[Any]) -> str:
    """A message shaped like Celery's Redis transport (protocol 2), enough for queue-length checks."""
    task_id = str(uuid.uuid4())
    body = base64.b64encode(json.dumps([args, {}, {"callbacks": None, "errbacks": None}]).encode()).decode()
    return json.dumps({
        "body": body, "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "retries": 0},
        "properties": {"correlation_id": task_id, "delivery_info": {"exchange": "", "routing_key": "celery"},
                       "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())},
    })


DEMO: web.AppKey[DemoApp] = web.AppKey("demo", DemoApp)


def make_app(dsn: str, redis_url: str) -> web.Application:
    demo = DemoApp(dsn, redis_url)
    app = web.Application()
    app[DEMO] = demo
    r = app.router
    r.add_get("/api/v1/tenants/{tenant_id:\\d+}/quotes", demo.list_quotes)
    r.add_post("/api/v1/tenants/{tenant_id:\\d+}/quotes", demo.create_quote)
    r.add_get("/api/v1/tenants/{tenant_id:\\d+}/quotes/detailed", demo.list_quotes_detailed)
    r.add_get("/api/v1/tenants/{tenant_id:\\d+}/dashboard", demo.dashboard)
    r.add_get("/api/v1/quotes/{quote_id:\\d+}", demo.get_quote)
    r.add_get("/api/v1/payments/by-external-id/{external_id}", demo.payment_by_external_id)
    r.add_get("/health", demo.health)
    r.add_get("/health/live", demo.health_live)
    r.add_get("/health/ready", demo.health_ready)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await demo.start()
        yield
        await demo.close()

    app.cleanup_ctx.append(lifecycle)
    return app


async def serve(dsn: str, redis_url: str, host: str, port: int) -> web.AppRunner:
    """Start the application on ``host:port``; the caller cleans the runner up."""
    runner = web.AppRunner(make_app(dsn, redis_url), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


__all__ = ["DemoApp", "create_schema", "external_id", "make_app", "serve"]
