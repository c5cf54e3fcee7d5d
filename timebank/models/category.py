from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, id_field


def category_key(name: str) -> str:
    """How a category is matched: spacing collapsed and case folded, so that "gardening",
    " Gardening " and "GARDENING" name one category, and "Café" is "CAFÉ" on both databases
    (SQLite's ``lower()`` folds ASCII only, so the key is computed here, not in SQL)."""
    return " ".join(name.split()).casefold()


class Category(SQLModel, table=True):
    """A kind of help (gardening, befriending, ...), for reports. Chosen per organisation."""

    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        UniqueConstraint("organisation_id", "name_key"),
        # Target of the composite foreign key from transactions.
        UniqueConstraint("organisation_id", "id"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId)
    # The organisation's own spelling, shown everywhere and stored on answers.
    name: str = Field(max_length=80)
    # category_key(name): unique per organisation. Case folding can lengthen a name ("ß" -> "ss").
    name_key: str = Field(max_length=240)
    is_active: bool = True

    @classmethod
    def named(cls, organisation_id: int, name: str) -> "Category":
        return cls(organisation_id=organisation_id, name=name, name_key=category_key(name))
