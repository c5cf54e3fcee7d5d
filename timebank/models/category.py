from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, id_field


class Category(SQLModel, table=True):
    """A kind of help (gardening, befriending, ...), for reports. Chosen per organisation."""

    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("organisation_id", "name"),
        # Target of the composite foreign key from transactions.
        UniqueConstraint("organisation_id", "id"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId)
    name: str = Field(max_length=80)
    is_active: bool = True
