"""Amounts of time and dates in words, for the pages ("1 hour 30 minutes", "3 November 2026").

The ledger counts integer minutes (DESIGN.md); here they become words through the
page's locale, so every word is translatable.
"""

from timebank.web.i18n import PageLocale


def hours_in_words(minutes: int, language: PageLocale) -> str:
    """How long ``minutes`` is, without its sign: "1 hour 30 minutes", "45 minutes", "0 hours"."""
    hours, rest = divmod(abs(minutes), 60)
    hours_text = language.ngettext("%(num)s hour", "%(num)s hours", hours) % {"num": language.format_number(hours)}
    minutes_text = language.ngettext("%(num)s minute", "%(num)s minutes", rest) % {"num": language.format_number(rest)}
    if rest == 0:
        return hours_text
    if hours == 0:
        return minutes_text
    return language.gettext("%(hours)s %(minutes)s") % {"hours": hours_text, "minutes": minutes_text}
