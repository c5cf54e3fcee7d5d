"""The language of the pages: gettext catalogues (Babel) and Babel's formats for dates.

The catalogue is read from its ``.po`` file and compiled in memory when the app
starts, so there is no compiled ``.mo`` to commit or forget to rebuild. Every text
a person reads goes through ``PageLocale.gettext``/``ngettext`` (``_()`` and
``ngettext()`` in templates, which use Jinja's i18n extension).
"""

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "en_GB"


@dataclass(frozen=True)
class PageLocale:
    """A language: its translations and its Babel locale (how dates and numbers are written)."""

    translations: gettext.NullTranslations
    locale: Locale

    @property
    def language_tag(self) -> str:
        """For ``<html lang>``: en-GB."""
        return str(self.locale).replace("_", "-")

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def format_date(self, value: dt.date) -> str:
        """As people write dates: 3 November 2026."""
        return _formatted_date(value, "long", self.locale)

    def format_month(self, value: dt.date) -> str:
        """A month as people write it: November 2026."""
        return _formatted_date(value, "MMMM y", self.locale)

    def format_clock_time(self, value: dt.datetime) -> str:
        """The time of day, already in the organisation's time zone: 14:05."""
        return format_time(value, format="short", locale=self.locale)

    def format_number(self, value: int) -> str:
        """A whole number with the locale's grouping: 10,000."""
        return _formatted_number(value, self.locale)


# Babel parses the locale's pattern on every call (about 40 us each, and a page with a
# statement formats dozens of amounts and dates): the same few values, remembered.
@lru_cache(maxsize=4096)
def _formatted_number(value: int, locale: Locale) -> str:
    return format_decimal(value, locale=locale)


@lru_cache(maxsize=4096)
def _formatted_date(value: dt.date, pattern: str, locale: Locale) -> str:
    return format_date(value, format=pattern, locale=locale)


@lru_cache
def load_locale(code: str = DEFAULT_LOCALE) -> PageLocale:
    po_file = TRANSLATIONS_DIR / code / "LC_MESSAGES" / "messages.po"
    with po_file.open("rb") as po:
        catalog = read_po(po, locale=code)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return PageLocale(Translations(compiled), Locale.parse(code))
