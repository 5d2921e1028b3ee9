"""Rows matched, and the ORM's optimistic concurrency on top of them, side by
side with PyMySQL on the same MariaDB: the gateway's connections report rows
*matched* for UPDATE (CLIENT_FOUND_ROWS, --found-rows on by default) and the
dialect turns SQLAlchemy's rowcount checks on, so a stale UPDATE or DELETE of
a `version_id_col` row raises StaleDataError instead of losing a change."""
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.exc import StaleDataError

from sqlgate_client.sqlalchemy_dialect import SqlgateDialect


class Base(DeclarativeBase):
    pass


class Doc(Base):
    __tablename__ = "orm_rowcount_doc"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(50))
    version: Mapped[int] = mapped_column(nullable=False)
    parts: Mapped[list["Part"]] = relationship(cascade="all, delete-orphan", back_populates="doc")
    __mapper_args__ = {"version_id_col": version}


class Part(Base):
    __tablename__ = "orm_rowcount_part"
    id: Mapped[int] = mapped_column(primary_key=True)
    doc_id: Mapped[int] = mapped_column(sa.ForeignKey("orm_rowcount_doc.id"))
    doc: Mapped[Doc] = relationship(back_populates="parts")


@pytest.fixture(params=["sqlgate", "pymysql"])
def engine(request, gateway_address):
    """The same tests through sqlgate and through PyMySQL (the reference)."""
    if request.param == "sqlgate":
        url = f"sqlgate://{gateway_address}"
    else:
        url = request.getfixturevalue("pymysql_url")
    engine = sa.create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Doc(id=1, title="draft", parts=[Part(id=n) for n in range(1, 6)]))
        session.commit()
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def test_the_dialect_checks_rowcounts_as_pymysqls_does():
    assert SqlgateDialect.supports_sane_rowcount
    assert SqlgateDialect.supports_sane_multi_rowcount


def test_update_counts_rows_matched_even_when_unchanged(engine):
    with engine.begin() as conn:
        same = conn.execute(sa.update(Doc.__table__).where(Doc.id == 1).values(title="draft"))
        assert same.rowcount == 1  # rows matched (MySQL without CLIENT_FOUND_ROWS: 0)
        none = conn.execute(sa.update(Doc.__table__).where(Doc.id == 99).values(title="x"))
        assert none.rowcount == 0


def _bump_elsewhere(engine):
    """Another session changes the document (and its version) and commits."""
    with Session(engine) as other:
        other.get(Doc, 1).title = "theirs"
        other.commit()


def test_a_stale_update_raises_and_loses_nothing(engine):
    with Session(engine) as mine:
        doc = mine.get(Doc, 1)
        _bump_elsewhere(engine)
        doc.title = "mine"
        with pytest.raises(StaleDataError):
            mine.commit()
    with Session(engine) as check:
        assert check.get(Doc, 1).title == "theirs"


def test_a_stale_delete_raises_instead_of_deleting_the_children(engine):
    with Session(engine) as mine:
        doc = mine.get(Doc, 1)
        assert len(doc.parts) == 5
        _bump_elsewhere(engine)
        mine.delete(doc)  # cascades to its 5 parts
        with pytest.raises(StaleDataError):
            mine.commit()
    with Session(engine) as check:
        assert check.get(Doc, 1).title == "theirs"
        assert check.scalar(sa.select(sa.func.count()).select_from(Part)) == 5
