"""The pages' Jinja environment: our templates, govuk-frontend-jinja's macros, gettext and formats.

Templates live in timebank/web/templates: ``base.html`` (the layout), ``macros/``
(the repeated pieces), ``pages/`` (one per page, named after its route) and
``errors/``. govuk-frontend's components are imported from
``govuk_frontend_jinja/components/<name>/macro.html``.
"""

from zoneinfo import ZoneInfo

from babel.lists import format_list
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader
from litestar import Litestar
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from timebank.ledger.reading import ACCOUNT_LABELS
from timebank.reports.service import parse_month
from timebank.web.formatting import hours_in_words
from timebank.web.i18n import PageLocale, load_locale
from timebank.web.paths import TEMPLATES_DIR, asset


def create_environment(language: PageLocale) -> Environment:
    environment = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(TEMPLATES_DIR),
                PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
            ]
        ),
        extensions=["jinja2.ext.i18n"],
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are files of the installed package: no stat of every template and macro
        # file on every page to see whether it changed (a restart picks up a change).
        auto_reload=False,
    )
    environment.install_gettext_translations(language.translations, newstyle=True)  # type: ignore[attr-defined]
    environment.globals["asset"] = asset
    environment.globals["language_tag"] = language.language_tag
    # For what is written outside a template (the report charts' labels): page_locale(app).
    environment.globals["page_locale"] = language
    environment.filters["hours_in_words"] = lambda minutes: hours_in_words(minutes, language)
    environment.filters["long_date"] = language.format_date
    environment.filters["month_year"] = language.format_month
    # A moment stored in UTC as the day it was in a time zone (the organisation's): "| local_day(ctx.timezone)".
    environment.filters["local_day"] = lambda moment, zone: moment.astimezone(ZoneInfo(zone)).date()
    environment.filters["month_name"] = lambda text: language.format_month(parse_month(text))
    environment.filters["number"] = language.format_number
    environment.filters["clock_time"] = language.format_clock_time
    # A text that comes as data but was written by us (a report's definitions, stored with a
    # closed month): through the catalogue when it holds it, as it is otherwise.
    environment.filters["translated"] = language.gettext
    environment.filters["names_list"] = lambda names: format_list(list(names), locale=language.locale)
    # How the ledger names the shared accounts (reading.py); pages say it in the page's language.
    environment.globals["shared_account_labels"] = {kind.value: label for kind, label in ACCOUNT_LABELS.items()}
    return environment


def page_locale(app: Litestar) -> PageLocale:
    """The pages' locale, for text written by Python rather than a template."""
    engine = app.template_engine
    assert isinstance(engine, JinjaTemplateEngine)
    return engine.engine.globals["page_locale"]  # type: ignore[no-any-return]


def template_config(language: PageLocale | None = None) -> TemplateConfig:
    environment = create_environment(language or load_locale())
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))
