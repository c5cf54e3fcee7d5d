from pydantic import BaseModel, Field

from timebank.api.schemas import InputModel


class ErasureRequest(InputModel):
    """Erasure cannot be undone: the caller confirms by giving the member's current name."""

    confirm_display_name: str = Field(
        min_length=1, max_length=200, description="The member's display name as it is now, to confirm."
    )


class ErasurePublic(BaseModel):
    member_id: int
    display_name: str = Field(description="What the member is called from now on.")
    descriptions_removed: int = Field(description="Transactions whose description was removed.")
    login: str = Field(description="What happened to their login: anonymised, unlinked, or none.")
    sign_in_records_removed: int
