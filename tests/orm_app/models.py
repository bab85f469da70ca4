"""The application as it declares itself: its own columns only, no stepsync columns."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from orm_app.columns import AccountColumns, StepColumns, TreeColumns, UserColumns


class Base(DeclarativeBase):
    pass


class Account(AccountColumns, Base):
    pass


class User(UserColumns, Base):
    pass


class Tree(TreeColumns, Base):
    pass


class Step(StepColumns, Base):
    pass
