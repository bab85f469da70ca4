"""The same application with stepsync's columns on its Step model (stepsync.sqlalchemy.StepsyncColumns)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from orm_app.columns import AccountColumns, StepColumns, TreeColumns, UserColumns
from stepsync.sqlalchemy import StepsyncColumns


class Base(DeclarativeBase):
    pass


class Account(AccountColumns, Base):
    pass


class User(UserColumns, Base):
    pass


class Tree(TreeColumns, Base):
    # The sync owns this link: view-only, so the ORM never writes source_tree_id.
    steps: Mapped[list[Step]] = relationship(
        foreign_keys="Step.source_tree_id", order_by="Step.source_node_id", viewonly=True
    )


class Step(StepColumns, StepsyncColumns, Base):
    source_tree: Mapped[Tree | None] = relationship(foreign_keys="Step.source_tree_id", viewonly=True)
