"""A FastAPI-style application on sqlgate's asyncio SQLAlchemy dialect: one
async engine for the process, an AsyncSession per request, one transaction
per request (written as FastAPI's dependency + handler would be, without
FastAPI itself: `handle_order` is what a `@app.post("/orders")` route runs).

It runs unchanged on MySQL with an aiomysql URL:
    python async_orders.py sqlgate+aio://localhost:50051
    python async_orders.py mysql+aiomysql://user:pass@localhost/shop
"""
import asyncio
import sys
from contextlib import asynccontextmanager
from decimal import Decimal

from sqlalchemy import Numeric, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

try:
    import sqlgate_client.sqlalchemy_dialect  # noqa: F401 (registers sqlgate+aio:// from a source tree)
except ImportError:  # not needed for other URLs; installed, the entry points register it
    pass


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "async_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    stock: Mapped[int]
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class Order(Base):
    __tablename__ = "async_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int]
    quantity: Mapped[int]
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2))


class OutOfStock(Exception):
    pass


class App:
    def __init__(self, url):
        self.engine = create_async_engine(url, pool_size=10)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self):
        """FastAPI's `Depends(get_session)`: a session per request."""
        async with self.sessions() as session:
            yield session

    async def handle_order(self, item_id, quantity):
        """POST /orders: one request = one transaction (commits, or rolls back on an exception)."""
        async with self.session() as session, session.begin():
            item = (await session.execute(select(Item).where(Item.id == item_id).with_for_update())).scalar_one()
            if item.stock < quantity:
                raise OutOfStock(item.name)
            item.stock -= quantity
            order = Order(item_id=item_id, quantity=quantity, total=item.price * quantity)
            session.add(order)
        return {"order": order.id, "total": str(order.total)}

    async def handle_stock(self):
        """GET /items."""
        async with self.session() as session:
            return {name: stock for name, stock in (await session.execute(select(Item.name, Item.stock)))}


async def main(url, requests=20):
    app = App(url)
    async with app.engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    async with app.session() as session, session.begin():
        session.add(Item(id=1, name="widget", stock=15, price=Decimal("2.50")))
    results = await asyncio.gather(*(app.handle_order(1, 1) for _ in range(requests)), return_exceptions=True)
    stock = await app.handle_stock()
    await app.engine.dispose()
    return results, stock


if __name__ == "__main__":
    results, stock = asyncio.run(main(sys.argv[1]))
    print(sum(isinstance(r, dict) for r in results), "orders,", sum(isinstance(r, OutOfStock) for r in results),
          "out of stock; stock now", stock)
