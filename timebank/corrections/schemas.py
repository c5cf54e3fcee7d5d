import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from timebank.api.schemas import InputModel
from timebank.corrections.service import MAX_TEXT, Correction


class CorrectionCreate(InputModel):
    what_is_wrong: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="What is wrong with the entry, in the member's words (trimmed; 1 to 1000 characters).",
        examples=["I was not there that day"],
    )
    what_it_should_be: str | None = Field(
        default=None,
        max_length=MAX_TEXT,
        description="What the entry should be, if the member knows (optional; empty is the same as null).",
        examples=["It should be 1 hour, not 2"],
    )


class AnswerCreate(InputModel):
    answer: str = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="The answer the member will read on their statement (trimmed; 1 to 1000 characters).",
        examples=["You were right: we have reversed the entry."],
    )


class AnswerPublic(BaseModel):
    answer: str
    answered_at: dt.datetime
    answered_by_user_id: int
    answered_by: str | None = Field(description="The name of the staff member or coordinator who answered.")
    reversal_id: int | None = Field(
        description="The reversal of the entry, when it had been reversed by the time of the answer."
    )
    reversed: bool


class CorrectionPublic(BaseModel):
    """A correction request. It changes nothing in the ledger: a coordinator reverses an entry."""

    id: int
    transaction_id: int
    member_id: int
    member_name: str
    what_is_wrong: str
    what_it_should_be: str | None
    created_at: dt.datetime
    status: Literal["open", "answered"]
    answer: AnswerPublic | None

    @classmethod
    def of(cls, correction: Correction) -> "CorrectionPublic":
        answer = correction.answer
        return cls(
            id=correction.id,
            transaction_id=correction.transaction_id,
            member_id=correction.member_id,
            member_name=correction.member_name,
            what_is_wrong=correction.what_is_wrong,
            what_it_should_be=correction.what_it_should_be,
            created_at=correction.created_at,
            status=correction.status,
            answer=None
            if answer is None
            else AnswerPublic(
                answer=answer.answer,
                answered_at=answer.answered_at,
                answered_by_user_id=answer.answered_by_user_id,
                answered_by=answer.answered_by_name,
                reversal_id=answer.reversal_id,
                reversed=answer.reversal_id is not None,
            ),
        )


class CorrectionList(BaseModel):
    items: list[CorrectionPublic]
