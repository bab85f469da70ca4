"""The application's own columns of accounts, users, trees and step_library (docs/contract.md §1).

Declared once as mixins, so `models` and `models_synced` map the same
application; a real application would write them in its model classes. Types,
defaults, names and comments match the database exactly, as an application
whose alembic autogenerate is clean would have them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from stepsync.sqlalchemy import updated_at_column


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, server_default=func.gen_random_uuid(), comment="Primary key.")


def _created_at(comment: str) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now(), comment=comment)


class AccountColumns:
    __tablename__ = "accounts"
    __table_args__: ClassVar[Any] = {
        "comment": "A customer organisation; users and flows may belong to one (team visibility is per account)."
    }

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(Text, comment="Display name of the account.")
    created_at: Mapped[datetime] = _created_at("When the account was created.")


class UserColumns:
    __tablename__ = "users"
    __table_args__: ClassVar[Any] = (
        UniqueConstraint("email", name="users_email_key"),
        {"comment": "An engineer who writes flows and uses the step library."},
    )

    id: Mapped[uuid.UUID] = _id()
    email: Mapped[str] = mapped_column(Text, comment="Login e-mail address, unique.")
    display_name: Mapped[str | None] = mapped_column(Text, comment="Name shown in the application.")
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", name="users_account_id_fkey"),
        comment="The account (team) the user belongs to, if any.",
    )
    created_at: Mapped[datetime] = _created_at("When the user was created.")


class TreeColumns:
    __tablename__ = "trees"
    __table_args__: ClassVar[Any] = (
        CheckConstraint("tree_type IN ('troubleshooting', 'procedural', 'maintenance')", name="trees_tree_type_check"),
        CheckConstraint("status IN ('draft', 'published', 'archived')", name="trees_status_check"),
        {"comment": "A flow: a procedural or maintenance procedure, or a troubleshooting tree."},
    )
    __mapper_args__: ClassVar[Any] = {"eager_defaults": True}

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(Text, comment="Title of the flow.")
    description: Mapped[str | None] = mapped_column(Text, comment="Free-text description of the flow.")
    tree_type: Mapped[str] = mapped_column(Text, comment="troubleshooting, procedural or maintenance.")
    tree_structure: Mapped[Any] = mapped_column(
        JSONB,
        nullable=False,
        server_default=text("'{}'::jsonb"),
        comment='The flow itself as JSON: {"steps": [...]} for procedures, a tree of nodes for troubleshooting.'
        " Anything while a draft.",
    )
    status: Mapped[str] = mapped_column(Text, server_default=text("'draft'"), comment="draft, published or archived.")
    is_active: Mapped[bool] = mapped_column(
        Boolean, server_default=text("true"), comment="false when the flow has been deactivated."
    )
    is_public: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), comment="true when the flow is visible outside its account."
    )
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", name="trees_account_id_fkey"), comment="The account that owns the flow, if any."
    )
    author_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", name="trees_author_id_fkey"), comment="The user who wrote the flow."
    )
    created_at: Mapped[datetime] = _created_at("When the flow was created.")
    updated_at: Mapped[datetime] = updated_at_column(comment="When the flow was last changed.")


class StepColumns:
    __tablename__ = "step_library"
    __mapper_args__: ClassVar[Any] = {"eager_defaults": True}

    @declared_attr.directive
    def __table_args__(cls) -> Any:
        return (
            CheckConstraint("step_type IN ('action', 'solution')", name="step_library_step_type_check"),
            CheckConstraint("visibility IN ('private', 'team', 'public')", name="step_library_visibility_check"),
            CheckConstraint("jsonb_typeof(content) = 'object'", name="step_library_content_check"),
            CheckConstraint("usage_count >= 0", name="step_library_usage_count_check"),
            CheckConstraint("rating BETWEEN 0 AND 5", name="step_library_rating_check"),
            CheckConstraint("rating_count >= 0", name="step_library_rating_count_check"),
            {"comment": "Reusable steps that engineers find and insert into flows or live sessions."},
        )

    id: Mapped[uuid.UUID] = _id()
    title: Mapped[str] = mapped_column(Text, comment="Short title of the step.")
    step_type: Mapped[str] = mapped_column(Text, comment="action or solution.")
    content: Mapped[dict[str, Any]] = mapped_column(
        JSONB, comment='A StepContent object: {"instructions", "help_text", "commands", "group_label"}.'
    )
    visibility: Mapped[str] = mapped_column(
        Text,
        server_default=text("'private'"),
        comment="private (creator only), team (creator's account) or public.",
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", name="step_library_created_by_fkey"), comment="The user who created (owns) the step."
    )
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", name="step_library_account_id_fkey"),
        comment="The account whose team may see a team step.",
    )
    usage_count: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), comment="How often the step was used; clients increment it."
    )
    rating: Mapped[Decimal | None] = mapped_column(
        Numeric(3, 2), comment="Average rating, 0 to 5; null when never rated."
    )
    rating_count: Mapped[int] = mapped_column(
        Integer, server_default=text("0"), comment="How many ratings the average is made of."
    )
    is_active: Mapped[bool] = mapped_column(
        Boolean, server_default=text("true"), comment="false = soft-deleted (retired)."
    )
    created_at: Mapped[datetime] = _created_at("When the step was created.")
    updated_at: Mapped[datetime] = updated_at_column(comment="When the step was last changed.")
